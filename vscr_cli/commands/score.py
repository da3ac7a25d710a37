"""Score a prediction store (or a cam store's pseudo-labels) against ground truth: A2D mIoU, class and global accuracy, foreground IoU."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import cv2
import numpy as np
import typer
from rich.table import Table

from vscr_cli import console, labels
from vscr_cli.datasets import GroundTruth, open_ground_truth
from vscr_cli.sources import recorded_ground_truth
from vscr_cli.errors import StoreError
from vscr_cli.options import Split
from vscr_cli.stages.score import FOREGROUND_METRICS, METRICS, SPACE_METRICS, SPACES, ConfusionAccumulator, Scores
from vscr_cli.store import Store, open_store

NAME = "score"

SPACE_TITLES = {"actor_action": "actor-action", "actor": "actor", "action": "action"}
#: The label map scored in each kind of store; a cam store's "no CAM" (255) counts as background.
LABEL_ARRAYS = {"pred": "label", "cam": "pseudo"}
METRIC_TITLES = {"miou": "mIoU", "class_acc": "class acc.", "global_acc": "global acc.", "fg_iou": "foreground IoU", "fg_j_mean": "J mean"}


@dataclass(frozen=True)
class ScoredFrame:
    """One ground-truth frame to score and where its prediction is (``position`` None: not predicted)."""

    video: str
    frame: int  # 0-based frame number
    position: int | None  # index into the prediction's T axis


def plan_frames(store: Store, gt: GroundTruth, split: str | None) -> list[ScoredFrame]:
    """Every ground-truth frame of the videos to score, paired with its prediction.

    ``split`` None scores the videos of the prediction (each must have ground truth);
    otherwise the videos of that ground-truth split are scored, predicted or not.
    """
    known = set(gt.videos("all"))
    if split is None:
        unknown = [video for video in store.videos if video not in known]
        if unknown:
            raise StoreError(
                f"{store.location}: {len(unknown)} predicted video(s) have no ground truth (e.g. {unknown[0]!r}); "
                "score against the dataset they came from"
            )
        videos = store.videos
    else:
        videos = gt.videos(split)
    predicted = set(store.videos)
    plan = []
    for video in videos:
        positions = (
            {int(frame): position for position, frame in enumerate(store.frame_index(video))} if video in predicted else {}
        )
        plan.extend(ScoredFrame(video, frame, positions.get(frame)) for frame in gt.labeled_frames(video))
    return plan


def score_frames(
    store: Store, gt: GroundTruth, plan: list[ScoredFrame], on_frame: Callable[[], None] = lambda: None, resize: bool = False
) -> Scores:
    """Accumulate the confusion of every planned frame; an unpredicted frame counts as all background.

    ``resize`` scales a prediction of another size to the ground truth's (nearest neighbour).
    """
    accumulator = ConfusionAccumulator()
    predicted = set(store.videos)
    for video, items in itertools.groupby(plan, key=lambda item: item.video):
        label = store.array(video, LABEL_ARRAYS[store.kind]) if video in predicted else None
        if label is not None and (label.dtype != np.uint8 or label.ndim != 3):
            raise StoreError(f"{store.location}: video {video!r}: label must be (T, H, W) uint8 A2D ids, not {label.dtype} {label.shape}")
        for item in items:
            truth = gt.label_map(video, item.frame)
            if label is None or item.position is None:
                prediction = np.zeros_like(truth)
            else:
                prediction = np.asarray(label[item.position])
                if store.kind == "cam":
                    prediction = np.where(prediction == labels.IGNORE, labels.BACKGROUND, prediction)
                if prediction.shape != truth.shape and resize:
                    prediction = cv2.resize(prediction, truth.shape[::-1], interpolation=cv2.INTER_NEAREST)
                if prediction.shape != truth.shape:
                    raise StoreError(
                        f"{store.location}: video {video!r} frame {item.frame}: prediction is "
                        f"{'x'.join(map(str, prediction.shape))}, ground truth {'x'.join(map(str, truth.shape))} "
                        "(predict at the ground truth's resolution, or pass --resize)"
                    )
            accumulator.add(truth, prediction, video=video)
            on_frame()
    return accumulator.scores()


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
    with open_store(pred, tuple(LABEL_ARRAYS)) as store:
        if gt is None:
            gt = recorded_ground_truth(store.location, store.record.inputs)
            console.log.info("ground truth: %s (where the prediction's sources are; --gt to choose)", gt)
        ground_truth = open_ground_truth(gt, dense=dense)
        plan = plan_frames(store, ground_truth, split.value if split else None)
        if predicted_only:
            plan = [item for item in plan if item.position is not None]
        if not plan:
            raise StoreError(f"{store.location}: no ground-truth frame to score in {gt}")
        missing = [item for item in plan if item.position is None]
        if missing and not allow_missing:
            raise StoreError(
                f"{store.location}: {len(missing)} of {len(plan)} ground-truth frames are not predicted "
                f"(e.g. video {missing[0].video!r} frame {missing[0].frame}); pass --allow-missing to count them as background"
            )
        if missing:
            console.log.warning("%d of %d ground-truth frames are not predicted: counted as background", len(missing), len(plan))
        with console.progress() as bar:
            task = bar.add_task("scoring frames", total=len(plan))
            scores = score_frames(store, ground_truth, plan, lambda: bar.advance(task), resize)
        location = store.location
    report = {
        "pred": location,
        "gt": str(gt),
        "split": split.value if split else None,
        "dense": dense,
        "videos": len({item.video for item in plan}),
        "missing_frames": len(missing),
        "metrics": {name: None if math.isnan(value) else value for name, value in scores.select(chosen).items()},
        "scores": scores.as_dict(),
    }
    if json_path is not None:
        text = json.dumps(report, indent=2, allow_nan=False)
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
