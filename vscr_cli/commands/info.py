"""Describe a store: kind, videos, frames, arrays, parameters and provenance."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from vscr_cli import console
from vscr_cli.options import JsonFlag
from vscr_cli.reports import print_store
from vscr_cli.store import describe

NAME = "info"


def command(
    store: Annotated[str, typer.Argument(help="A .zarr directory, a .zarr.zip file, or '-' for a zip on stdin.")],
    json_output: JsonFlag = False,
) -> None:
    facts = describe(store)
    if json_output:
        console.stdout.print_json(json.dumps(facts))
        return
    print_store(facts)
