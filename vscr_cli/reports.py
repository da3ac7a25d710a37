"""What the commands print for people: rich tables of scores, store descriptions and synthetic
datasets (the data comes from the stages; nothing here computes)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from rich.table import Table

from vscr_cli import console, labels
from vscr_cli.datasets.synth import SynthSummary
from vscr_cli.stages.score import FOREGROUND_METRICS, SPACE_METRICS, SPACES, Scores

SPACE_TITLES = {"actor_action": "actor-action", "actor": "actor", "action": "action"}
METRIC_TITLES = {"miou": "mIoU", "class_acc": "class acc.", "global_acc": "global acc.", "fg_iou": "foreground IoU", "fg_j_mean": "J mean"}



def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def print_scores(scores: Scores, chosen: list[str], report: dict[str, Any], per_class: bool, per_video: bool = False) -> None:
    """The scores table (percentages), the foreground line, totals and optionally per-class IoU
    tables and a per-video table."""
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
    if per_video:
        out.print(per_video_table(report["per_video"], chosen))


SHORT_TITLES = {"fg_iou": "fg IoU", "fg_j_mean": "J mean"}
#: The per-video table's columns: each label space's mIoU and the foreground metrics (of those chosen).
PER_VIDEO_COLUMNS = tuple(f"{space}.miou" for space in SPACES) + FOREGROUND_METRICS


def per_video_table(per_video: dict[str, dict[str, Any]], chosen: list[str]) -> Table:
    """One row per video of the report's ``per_video`` scores (fractions, None where undefined)."""
    columns = [key for key in PER_VIDEO_COLUMNS if key.rsplit(".", 1)[-1] in chosen]
    table = Table(title="per video (mIoU of each label space, foreground scores)")
    table.add_column("video", no_wrap=True)
    table.add_column("frames", justify="right")
    for key in columns:
        space, _, metric = key.rpartition(".")
        table.add_column(SPACE_TITLES[space] if space else SHORT_TITLES[metric], justify="right")
    for video, values in per_video.items():
        table.add_row(video, str(values["frames"]), *(_percent(math.nan if values[key] is None else values[key]) for key in columns))
    return table


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


def print_summary(summary: SynthSummary) -> None:
    """A table of the videos and their tags, then totals."""
    table = Table(title=f"{summary.root}: {len(summary.videos)} videos")
    for column in ("video", "split", "kind", "tags", "annotated frames"):
        table.add_column(column)
    for video in summary.videos:
        table.add_row(
            video.video_id,
            video.split,
            video.kind,
            labels.format_tags(video.tags) or "-",
            " ".join(str(f) for f in video.annotated),
        )
    console.stdout.print(table)
    kinds = {kind: sum(v.kind == kind for v in summary.videos) for kind in ("single", "multi", "empty")}
    classes = {t for v in summary.videos for t in v.tags}
    frames = sum(len(v.annotated) for v in summary.videos)
    console.stdout.print(
        f"{kinds['single']} single-action, {kinds['multi']} multi-tag, {kinds['empty']} actor-free videos; "
        f"{len(classes)} of {len(labels.VALID_IDS)} actor-action classes; {frames} annotated frames"
    )


def print_store(facts: dict[str, Any]) -> None:
    """``vscr info``: a store's record, then a table of its videos and arrays (``facts`` from :func:`~vscr_cli.store.describe`)."""
    out = console.stdout
    record_lines = [
        f"[bold]{facts['location']}[/]: {facts['kind']} store ({facts['schema']}), label space {facts['label_space']}",
        f"created by vscr {facts['created_by'].get('version', '?')}: {' '.join(facts['created_by'].get('argv', []))}",
        f"params: {json.dumps(facts['params'])}",
        f"inputs: {json.dumps(facts['inputs'])}",
    ]
    for line in record_lines:
        out.print(line, highlight=False)
    if facts["skipped"]:
        out.print(f"skipped: {', '.join(s['video'] + ' (' + s['reason'] + ')' for s in facts['skipped'])}")
    table = Table(title=f"{len(facts['videos'])} videos, {sum(v['frames'] for v in facts['videos'])} frames")
    for column in ("video", "frames", "arrays"):
        table.add_column(column)
    for video in facts["videos"]:
        arrays = ", ".join(f"{name} {'x'.join(map(str, a['shape']))} {a['dtype']}" for name, a in video["arrays"].items())
        table.add_row(video["video"], str(video["frames"]), arrays)
    out.print(table)
