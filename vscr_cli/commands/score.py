"""Score a prediction store (or a cam store's pseudo-labels) against ground truth: A2D mIoU, class and global accuracy, foreground IoU."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Optional

import numpy as np
import typer
from rich.table import Table

from vscr_cli import console, labels
from vscr_cli.options import Split
from vscr_cli.stages import score as stage
from vscr_cli.stages.score import FOREGROUND_METRICS, METRICS, SPACE_METRICS, SPACES, Scores

NAME = "score"

SPACE_TITLES = {"actor_action": "actor-action", "actor": "actor", "action": "action"}
METRIC_TITLES = {"miou": "mIoU", "class_acc": "class acc.", "global_acc": "global acc.", "fg_iou": "foreground IoU", "fg_j_mean": "J mean"}


def parse_metrics(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}", param_hint="'--metrics'"
        )
    return names


def command(
    pred: Annotated[str, typer.Argument(help="Prediction store (kind pred, or cam to score its pseudo-labels): .zarr, .zarr.zip or '-' (default) for a zip on stdin.")] = "-",
    gt: Annotated[
        Optional[Path],
        typer.Option("--gt", show_default=False, help="Ground truth: an A2D Release root (real or from vscr synth) or a DAVIS-style folder (default: the one the prediction's recorded sources are in)."),
    ] = None,
    metrics: Annotated[
        str, typer.Option("--metrics", help=f"Comma-separated metrics to show: {', '.join(METRICS)}.")
    ] = ",".join(METRICS),
    split: Annotated[
        Optional[Split],
        typer.Option("--split", help="Score every video of this ground-truth split (all must be predicted); default: the predicted videos."),
    ] = None,
    dense: Annotated[bool, typer.Option("--dense", help="Score every frame (the dense maps of `vscr synth --dense`), not just the annotated ones.")] = False,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Count ground-truth frames without a prediction as all background instead of failing.")] = False,
    predicted_only: Annotated[bool, typer.Option("--predicted-only", help="Score only the ground-truth frames the prediction holds (a sample of densely annotated videos, e.g. --every 5).")] = False,
    resize: Annotated[bool, typer.Option("--resize", help="Scale predictions of another size to the ground truth's (nearest neighbour) instead of failing.")] = False,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also show the IoU of every class.")] = False,
    json_path: Annotated[Optional[str], typer.Option("--json", metavar="FILE", help="Write all scores and confusion matrices as JSON to FILE ('-': stdout, instead of the tables).")] = None,
) -> None:
    chosen = parse_metrics(metrics)
    scores, report = stage.run(pred, gt, chosen, split.value if split else None, dense, allow_missing, predicted_only, resize)
    if json_path is not None:
        text = stage.report_json(report)
        if json_path == "-":
            print(text)
            return
        Path(json_path).write_text(text + "\n")
    print_scores(scores, chosen, report, per_class)


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def print_scores(scores: Scores, chosen: list[str], report: dict[str, Any], per_class: bool) -> None:
    """The scores table (percentages), the foreground line, totals and optionally per-class IoU tables."""
    out = console.stdout
    columns = [metric for metric in SPACE_METRICS if metric in chosen]
    if columns:
        table = Table(title=f"{report['pred']} vs {report['gt']}")
        table.add_column("labels")
        for metric in columns:
            table.add_column(METRIC_TITLES[metric], justify="right")
        for space in SPACES:
            table.add_row(SPACE_TITLES[space], *(_percent(getattr(scores.space(space), metric)) for metric in columns))
        out.print(table)
    foreground = [f"{METRIC_TITLES[metric]} {_percent(getattr(scores, metric))}" for metric in FOREGROUND_METRICS if metric in chosen]
    if foreground:
        out.print("foreground: " + ", ".join(foreground), highlight=False)
    missing = f", {report['missing_frames']} of them not predicted (background)" if report["missing_frames"] else ""
    out.print(
        f"{scores.frames} frames of {report['videos']} videos{missing}; "
        f"{scores.pixels} pixels scored, {scores.pixels_ignored} ignored",
        highlight=False,
    )
    if per_class:
        for space in SPACES:
            out.print(per_class_table(scores, space))


def _class_name(space: str, value: int) -> str:
    if value == labels.BACKGROUND:
        return "background"
    if space == "actor":
        return labels.ACTORS[value - 1]
    if space == "action":
        return labels.ACTIONS[value - 1]
    return labels.name_of(value)


def per_class_table(scores: Scores, space: str) -> Table:
    """IoU, ground-truth and predicted pixels of every class present in either map."""
    space_scores = scores.space(space)
    confusion = np.asarray(space_scores.confusion)
    truth_pixels = confusion.sum(axis=1) + np.asarray(space_scores.invalid_predictions)
    predicted_pixels = confusion.sum(axis=0)
    table = Table(title=f"{SPACE_TITLES[space]} IoU per class")
    for column in ("class", "id", "IoU", "gt pixels", "predicted pixels"):
        table.add_column(column, justify="left" if column == "class" else "right")
    absent = 0
    for index, value in enumerate(space_scores.classes):
        iou = space_scores.per_class_iou[value]
        if math.isnan(iou):
            absent += 1
            continue
        table.add_row(_class_name(space, value), str(value), _percent(iou), str(truth_pixels[index]), str(predicted_pixels[index]))
    if absent:
        table.caption = f"{absent} classes in neither map not shown"
    return table
