"""Join the stores of a sharded run (--shard I/N) into one store, as one unsharded run writes it."""

from __future__ import annotations

from typing import Annotated

import typer

from vscr_cli import console
from vscr_cli.options import Output, Overwrite, resolve_output
from vscr_cli.stages.merge import merge_shards

NAME = "merge"


def command(
    shards: Annotated[list[str], typer.Argument(help="The stores of every shard I/N of one run (any order).", show_default=False)],
    output: Output = None,
    overwrite: Overwrite = False,
) -> None:
    target = resolve_output(output, overwrite)
    with console.progress() as bar:
        task = bar.add_task("merging", total=None)
        videos = merge_shards(shards, target, overwrite, lambda: bar.advance(task))
    console.log.info("merged %d shards: %d videos", len(shards), len(videos))
