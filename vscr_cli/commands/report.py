"""One static HTML page of a run: score tables, a per-class IoU chart, training curves, overlays of the worst and best videos, the recorded commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vscr_cli import console
from vscr_cli.options import Overwrite
from vscr_cli.settings.report import REPORT, check_report_inputs
from vscr_cli.store import check_output

NAME = "report"


def command(
    inputs: Annotated[
        list[Path],
        typer.Argument(help="Score reports (vscr score --json), model folders, or folders holding them (e.g. a vscr demo folder).", show_default=False),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="The report folder to write (index.html and its pictures; its parent must exist).")],
    title: Annotated[str, typer.Option(help="The page's title.")] = "vscr report",
    overwrite: Overwrite = False,
) -> None:
    check_output(output, REPORT, overwrite, resumable=False)  # refusals first: before matplotlib and the renderers load
    check_report_inputs(inputs)
    from vscr_cli.stages import report as stage

    page = stage.run(inputs, output, title, overwrite)
    console.stdout.print(f"report: {page} (open it in a browser; no server needed)", highlight=False)
