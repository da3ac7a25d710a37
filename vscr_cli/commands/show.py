"""Render a store over its frames: label maps with a legend, edges and segments, CAM heat maps (PNG sheet, MP4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vscr_cli.stages import show as stage

NAME = "show"


def command(
    store_path: Annotated[str, typer.Argument(metavar="STORE", help="An edges, cam or pred store (or '-' for a zip on stdin).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output: a .png contact sheet or a .mp4 video (one video per call).")],
    video: Annotated[Optional[str], typer.Option(help="The video to show (default: the store's first).")] = None,
    frames: Annotated[int, typer.Option(min=1, help="Frames in a contact sheet, evenly spread (over the annotated ones with --gt).")] = 6,
    gt: Annotated[Optional[Path], typer.Option("--gt", help="Ground truth (A2D root or DAVIS-style folder) to show beside it.")] = None,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Put the frame itself (and --gt) next to the store's views.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
) -> None:
    if output.suffix.lower() not in stage.SUFFIXES:
        raise typer.BadParameter("the output must end in .png or .mp4", param_hint="-o")
    stage.run(store_path, output, video, frames, gt, side_by_side, overwrite)
