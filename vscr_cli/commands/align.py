"""Give every actor region of a prediction store one action by majority vote (the paper's action alignment)."""

from __future__ import annotations

import enum
from typing import Annotated

import typer

from vscr_cli.options import Output, Overwrite, Resume, resolve_output
from vscr_cli.stages import align as stage

NAME = "align"


class Connectivity(str, enum.Enum):
    four = "4"
    eight = "8"


def _check_min_iou(value: float) -> float:
    if not 0.0 < value <= 1.0:
        raise typer.BadParameter(f"{value} is not in (0, 1]")
    return value


def command(
    pred: Annotated[str, typer.Argument(help="Prediction store (kind pred): .zarr, .zarr.zip or '-' (default) for a zip on stdin.")] = "-",
    output: Output = None,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Vote over tracks of regions linked across frames (default: per frame, as in the paper).")] = False,
    min_iou: Annotated[
        float,
        typer.Option("--min-iou", callback=_check_min_iou, help="With --track: smallest IoU linking a region to the previous frame's."),
    ] = 0.3,
    connectivity: Annotated[Connectivity, typer.Option("--connectivity", help="Pixels of an actor region touch by 4 or 8 neighbours.")] = Connectivity.eight,
    use_prob: Annotated[bool, typer.Option("--use-prob", help="Soft votes from the store's class probabilities (prob) instead of one vote per pixel.")] = False,
    overwrite: Overwrite = False,
    resume: Resume = False,
) -> None:
    target = resolve_output(output, overwrite, resume, pipe="| vscr score")
    stage.run(pred, target, track, min_iou, int(connectivity.value), use_prob, overwrite, resume)
