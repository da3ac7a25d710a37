"""A2D segmentation scores: confusion matrices, mIoU, class and global accuracy, foreground IoU.

The protocol (see ``docs/metrics.md``) follows the A2D reference evaluation: one confusion
matrix over every scored pixel of every frame, rows = ground truth, columns = prediction,
for three label spaces derived from the A2D ids:

* ``actor_action``: background + the 43 valid ids (44 classes, :data:`~vscr_cli.labels.CLASS_IDS`);
* ``actor``: ``id // 10`` -> background + 7 actors (8 classes);
* ``action``: ``id % 10`` -> background + 9 actions (10 classes);

plus the binary ``fg`` space (background vs any actor) for foreground IoU.

Which pixels count is decided by the ground truth alone: a pixel whose ground-truth id is
neither background nor one of the 43 valid ids (255, or an invalid id such as 14) is not
scored. A scored pixel whose *prediction* is not a class of the label space (255, 14, ...) is
a miss: it is in its ground-truth row (lowering that class's accuracy and IoU and the global
accuracy) but is a false positive for no class. The reference code masks on the ground truth
only; dropping such pixels instead would let a predictor raise its score by abstaining.

A store is scored only when it holds A2D's ids (background, the 43 classes, 255 "no prediction")
and was made from the ground truth's own footage (the sha256 each video group records, see
:func:`check_footage`): anything else is refused with one line rather than scored quietly.

All scores are fractions in [0, 1]; NaN marks an undefined value (no pixel to score).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vscr_cli import console, labels
from vscr_cli.datasets import GroundTruth, open_ground_truth
from vscr_cli.errors import SourceError, StoreError
from vscr_cli.labels import ACTION_INDEX, ACTOR_INDEX, CLASS_IDS, CLASS_INDEX, IGNORE, NUM_ACTIONS, NUM_ACTORS
from vscr_cli.sources import discover, recorded_ground_truth
from vscr_cli.schemas import CAMS, LABEL, PREDICTIONS, PSEUDO
from vscr_cli.store import JSON_RECORD_KEY, Store, open_store, output_record

#: The label spaces scored, in report order.
SPACES: tuple[str, ...] = ("actor_action", "actor", "action")
#: Per-space metric names.
SPACE_METRICS: tuple[str, ...] = ("miou", "class_acc", "global_acc")
#: Foreground metric names (one value each, no space).
FOREGROUND_METRICS: tuple[str, ...] = ("fg_iou", "fg_j_mean")
#: Every metric name :meth:`Scores.select` accepts.
METRICS: tuple[str, ...] = SPACE_METRICS + FOREGROUND_METRICS

_NUM_IDS = 256  # label maps are uint8
#: (256,) bool: the ids a scored store may hold: background, the 43 classes and 255 ("no prediction", a miss).
_A2D_IDS = np.isin(np.arange(_NUM_IDS), [*CLASS_IDS, IGNORE])
#: The kind of output ``vscr score --json FILE`` writes (see vscr_cli.store.file_output).
SCORES_KIND = "scores"
#: The stores scored, by kind, and the label map scored in each; a cam store's "no CAM" (255) counts as background.
SCORED = {schema.kind: schema for schema in (PREDICTIONS, CAMS)}
LABEL_ARRAYS = {PREDICTIONS.kind: LABEL, CAMS.kind: PSEUDO}


@dataclass(frozen=True)
class _Space:
    """A projection of the 256 uint8 ids onto ``K`` classes (``IGNORE`` = not a class)."""

    classes: tuple[int, ...]  # class values: A2D id, actor number or action number; 0 = background
    index: np.ndarray  # (256,) uint8 id -> class index 0..K-1, IGNORE elsewhere

    def gt_projection(self) -> np.ndarray:
        """(256, K) int64 one-hot of the ground-truth class; all-zero rows for unscored ids."""
        return self.pred_projection()[:, : len(self.classes)]

    def pred_projection(self) -> np.ndarray:
        """(256, K + 1) int64 one-hot of the predicted class; column K = not a class of the space."""
        num_classes = len(self.classes)
        column = np.where(self.index == IGNORE, num_classes, self.index)
        projection = np.zeros((_NUM_IDS, num_classes + 1), dtype=np.int64)
        projection[np.arange(_NUM_IDS), column] = 1
        return projection


def _foreground_index() -> np.ndarray:
    index = np.where(CLASS_INDEX == IGNORE, IGNORE, np.minimum(CLASS_INDEX, 1))
    return index.astype(np.uint8)


_SPACES: dict[str, _Space] = {
    "actor_action": _Space(CLASS_IDS, CLASS_INDEX),
    "actor": _Space(tuple(range(NUM_ACTORS + 1)), ACTOR_INDEX),
    "action": _Space(tuple(range(NUM_ACTIONS + 1)), ACTION_INDEX),
    "fg": _Space((0, 1), _foreground_index()),
}
_GT_PROJECTIONS = {name: space.gt_projection() for name, space in _SPACES.items()}
_PRED_PROJECTIONS = {name: space.pred_projection() for name, space in _SPACES.items()}


def _reduce(id_counts: np.ndarray, space: str) -> np.ndarray:
    """(256, 256) id co-occurrence counts -> (K, K + 1) confusion of ``space``.

    The last column counts predictions that are no class of the space.
    """
    return _GT_PROJECTIONS[space].T @ id_counts @ _PRED_PROJECTIONS[space]


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _class_iou(confusion: np.ndarray) -> np.ndarray:
    """(K, K + 1) confusion -> (K,) IoU = diag / (row + col - diag); NaN where the class is in neither map."""
    num_classes = confusion.shape[0]
    diagonal = np.diag(confusion[:, :num_classes]).astype(np.float64)
    union = confusion.sum(axis=1) + confusion[:, :num_classes].sum(axis=0) - diagonal
    with np.errstate(divide="ignore", invalid="ignore"):
        return diagonal / union


@dataclass(frozen=True)
class SpaceScores:
    """Scores of one label space with ``K`` classes.

    ``confusion[i][j]`` counts pixels of ground-truth class ``classes[i]`` predicted as
    ``classes[j]`` (K x K); ``invalid_predictions[i]`` counts those predicted with an id that is
    no class of the space (a miss, see the module docstring). ``per_class_iou`` maps each class
    value to its IoU, NaN where the class is absent from both maps.
    """

    classes: tuple[int, ...]
    miou: float
    class_acc: float
    global_acc: float
    per_class_iou: dict[int, float]
    confusion: list[list[int]]
    invalid_predictions: list[int]

    @classmethod
    def from_confusion(cls, classes: tuple[int, ...], confusion: np.ndarray) -> SpaceScores:
        """Compute the scores of a (K, K + 1) confusion matrix."""
        num_classes = len(classes)
        diagonal = np.diag(confusion[:, :num_classes]).astype(np.float64)
        rows = confusion.sum(axis=1)
        iou = _class_iou(confusion)
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = diagonal / rows
        total = int(rows.sum())
        return cls(
            classes=classes,
            miou=_nanmean(iou),
            class_acc=_nanmean(recall),
            global_acc=float(diagonal.sum() / total) if total else math.nan,
            per_class_iou={value: float(v) for value, v in zip(classes, iou)},
            confusion=confusion[:, :num_classes].tolist(),
            invalid_predictions=confusion[:, num_classes].tolist(),
        )


@dataclass(frozen=True)
class Scores:
    """Every score of a set of frames; fractions in [0, 1], NaN where undefined.

    ``fg_iou`` is the foreground IoU pooled over all scored pixels (like every other score here);
    ``fg_j_mean`` is DAVIS's region similarity J: foreground IoU per frame over its scored pixels
    (1 when neither map has foreground there; frames without scored pixels skipped), averaged over
    each video's frames, then over videos.
    """

    actor_action: SpaceScores
    actor: SpaceScores
    action: SpaceScores
    fg_iou: float
    fg_j_mean: float
    frames: int
    pixels: int  # scored pixels (valid ground truth)
    pixels_ignored: int  # pixels whose ground truth is 255 or an invalid id

    def space(self, name: str) -> SpaceScores:
        """The scores of label space ``name`` (one of :data:`SPACES`)."""
        if name not in SPACES:
            raise ValueError(f"unknown label space {name!r}; expected one of {', '.join(SPACES)}")
        return getattr(self, name)

    def select(self, names: Iterable[str] = METRICS, spaces: Iterable[str] = SPACES) -> dict[str, float]:
        """Flat ``{"actor_action.miou": ..., "fg_iou": ...}`` of the named metrics, spaces first."""
        wanted = list(names)
        unknown = [name for name in wanted if name not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric(s) {', '.join(unknown)}; expected some of {', '.join(METRICS)}")
        selected: dict[str, float] = {}
        for space in spaces:
            space_scores = self.space(space)
            for metric in SPACE_METRICS:
                if metric in wanted:
                    selected[f"{space}.{metric}"] = getattr(space_scores, metric)
        for metric in FOREGROUND_METRICS:
            if metric in wanted:
                selected[metric] = getattr(self, metric)
        return selected

    def as_dict(self) -> dict[str, Any]:
        """A strict-JSON-ready dict: NaN becomes ``None``, class keys stay ints."""
        return _json_ready({f.name: getattr(self, f.name) for f in fields(self)})


def _json_ready(value: Any) -> Any:
    if isinstance(value, SpaceScores):
        return _json_ready({f.name: getattr(value, f.name) for f in fields(value)})
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class ConfusionAccumulator:
    """Streams (ground truth, prediction) label maps into the counts every score derives from.

    It keeps the exact (256, 256) co-occurrence counts of raw ids, so each label space's
    confusion is an exact projection of it, plus per-video sums of per-frame foreground IoU.
    """

    def __init__(self) -> None:
        self.id_counts = np.zeros((_NUM_IDS, _NUM_IDS), dtype=np.int64)  # [gt id, predicted id]
        self.frames = 0
        self._video_fg_iou: dict[str, list[float]] = {}  # video -> [sum of frame fg IoU, frames]

    def add(self, gt: np.ndarray, pred: np.ndarray, video: str = "") -> None:
        """Count one frame (H, W) or a stack (T, H, W) of uint8 id maps; ``video`` groups frames for J."""
        if gt.shape != pred.shape:
            raise ValueError(f"ground truth {gt.shape} and prediction {pred.shape} differ in shape")
        if gt.dtype != np.uint8 or pred.dtype != np.uint8:
            raise ValueError(f"label maps must be uint8, got {gt.dtype} and {pred.dtype}")
        if gt.ndim not in (2, 3):
            raise ValueError(f"expected (H, W) or (T, H, W) label maps, got shape {gt.shape}")
        frames_gt = gt.reshape(-1, gt.shape[-2] * gt.shape[-1])
        frames_pred = pred.reshape(frames_gt.shape)
        video_sum = self._video_fg_iou.setdefault(video, [0.0, 0])
        for frame_gt, frame_pred in zip(frames_gt, frames_pred):
            pairs = frame_gt.astype(np.intp) * _NUM_IDS + frame_pred
            counts = np.bincount(pairs, minlength=_NUM_IDS * _NUM_IDS).reshape(_NUM_IDS, _NUM_IDS)
            self.id_counts += counts
            self.frames += 1
            foreground = _reduce(counts, "fg")
            if foreground.sum():  # a frame without scored pixels has no J
                foreground_iou = _class_iou(foreground)[1]
                video_sum[0] += 1.0 if math.isnan(foreground_iou) else float(foreground_iou)
                video_sum[1] += 1

    def merge(self, other: ConfusionAccumulator) -> None:
        """Add the counts of another accumulator (e.g. one filled by a parallel worker)."""
        self.id_counts += other.id_counts
        self.frames += other.frames
        for video, (iou_sum, count) in other._video_fg_iou.items():
            video_sum = self._video_fg_iou.setdefault(video, [0.0, 0])
            video_sum[0] += iou_sum
            video_sum[1] += count

    def confusion(self, space: str) -> np.ndarray:
        """(K, K + 1) int64 confusion of ``space``: ``"actor_action"``, ``"actor"``, ``"action"`` or ``"fg"``.

        Rows: ground-truth classes; columns: predicted classes, then one column of predictions
        that are no class of the space.
        """
        if space not in _SPACES:
            raise ValueError(f"unknown label space {space!r}; expected one of {', '.join(_SPACES)}")
        return _reduce(self.id_counts, space)

    def scores(self) -> Scores:
        """All scores of the frames added so far."""
        per_space = {
            name: SpaceScores.from_confusion(_SPACES[name].classes, self.confusion(name)) for name in SPACES
        }
        video_means = np.array([s / n for s, n in self._video_fg_iou.values() if n], dtype=np.float64)
        pixels = int(self.confusion("fg").sum())
        return Scores(
            **per_space,
            fg_iou=float(_class_iou(self.confusion("fg"))[1]),
            fg_j_mean=_nanmean(video_means),
            frames=self.frames,
            pixels=pixels,
            pixels_ignored=int(self.id_counts.sum()) - pixels,
        )


# -- scoring a store ---------------------------------------------------------------------------------
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
) -> tuple[Scores, dict[str, Scores]]:
    """Accumulate the confusion of every planned frame; an unpredicted frame counts as all background.

    Returns the scores of all frames and those of each video's frames. ``resize`` scales a
    prediction of another size to the ground truth's (nearest neighbour).
    """
    total = ConfusionAccumulator()
    per_video: dict[str, Scores] = {}
    predicted = set(store.videos)
    for video, items in itertools.groupby(plan, key=lambda item: item.video):
        accumulator = ConfusionAccumulator()
        label = store.array(video, LABEL_ARRAYS[store.kind]) if video in predicted else None
        if label is not None:
            SCORED[store.kind].check(store.location, video, LABEL_ARRAYS[store.kind], label)
        for item in items:
            truth = gt.label_map(video, item.frame)
            if label is None or item.position is None:
                prediction = np.zeros_like(truth)
            else:
                prediction = np.asarray(label[item.position])
                if store.kind == CAMS.kind:
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
        foreign = np.flatnonzero(accumulator.id_counts.sum(axis=0) * ~_A2D_IDS)
        if foreign.size:
            raise StoreError(
                f"{store.location}: video {video!r} holds ids that are no A2D actor-action class ({', '.join(map(str, foreign[:10]))}); "
                "a scored store holds 0, the 43 class ids and 255"
            )
        total.merge(accumulator)
        per_video[video] = accumulator.scores()
    return total.scores(), per_video


def check_footage(store: Store, gt: Path, videos: Iterable[str]) -> None:
    """Refuse (one line) to score ``videos`` of ``store`` against ground truth of other footage: the
    footage digest each video group records must be that of the video beside the ground truth in
    ``gt``. Videos without a recorded digest, or without footage in ``gt``, are not checked."""
    try:
        footage = {source.video_id: source for source in discover([gt])}
    except SourceError:
        return  # ground truth without footage (masks only): nothing to compare
    for video in videos:
        recorded = store.footage(video)
        if video in footage and recorded is not None and recorded != footage[video].digest():
            raise StoreError(
                f"{store.location}: video {video!r} was made from other footage than the ground truth's ({footage[video].path}); "
                "score against the dataset it came from, or pass --ignore-footage for a re-encoded copy"
            )


def run(
    pred: str,
    gt: Path | None = None,
    metrics: Sequence[str] = METRICS,
    split: str | None = None,
    dense: bool = False,
    allow_missing: bool = False,
    predicted_only: bool = False,
    resize: bool = False,
    ignore_footage: bool = False,
) -> tuple[Scores, dict[str, Any]]:
    """``vscr score``: the scores of the pred or cam store ``pred`` (``-``: stdin) against ground
    truth ``gt`` (None: where its recorded sources are), and the report ``--json`` writes.
    ``ignore_footage``: score even where the ground truth's footage is not what the store was made from."""
    with open_store(pred, tuple(LABEL_ARRAYS)) as store:
        if gt is None:
            gt = recorded_ground_truth(store.location, store.record.inputs)
            console.log.info("ground truth: %s (where the prediction's sources are; --gt to choose)", gt)
        ground_truth = open_ground_truth(gt, dense=dense)
        plan = plan_frames(store, ground_truth, split)
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
        if not ignore_footage:
            check_footage(store, gt, sorted({item.video for item in plan if item.position is not None}))
        with console.progress() as bar:
            task = bar.add_task("scoring frames", total=len(plan))
            scores, per_video = score_frames(store, ground_truth, plan, lambda: bar.advance(task), resize)
        location = store.location
    report = {
        JSON_RECORD_KEY: output_record(SCORES_KIND),
        "pred": location,
        "gt": str(gt),
        "split": split,
        "dense": dense,
        "videos": len({item.video for item in plan}),
        "missing_frames": len(missing),
        "metrics": _json_ready(scores.select(metrics)),
        "scores": scores.as_dict(),
        "per_video": {video: _json_ready({"frames": video_scores.frames, **video_scores.select(metrics)}) for video, video_scores in per_video.items()},
    }
    return scores, report


def report_json(report: Mapping[str, Any]) -> str:
    """The report as strict JSON (NaN is None already)."""
    return json.dumps(report, indent=2, allow_nan=False)
