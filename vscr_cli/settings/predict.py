"""vscr predict's parameters: the ways it decodes and reads out classes, their defaults, where it
finds the model, and what a pred store records (:class:`PredictParams`)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vscr_cli import labels
from vscr_cli.errors import VscrError
from vscr_cli.settings.model import DEFAULT_MODEL

DECODES = ("video", "frame")
#: How ``decode="video"`` decides a video's classes without tags (:func:`vscr_cli.stages.predict.video_predictions`).
VIDEO_DECISIONS = ("two-stream", "pooled")
#: ``two-stream``: actors from the pooled class probabilities, their actions from the action head (models
#: without one: ``pooled``): +8.1 actor-action mIoU on the synthetic test videos over three seeds, above on
#: two (docs/train.md, "The action head and the two-stream video decision").
DEFAULT_VIDEO_DECISION = "two-stream"
#: Ways of reading classes off the network: its softmax head, or k-NN votes of the model's prototype bank (vscr refine).
READOUTS = ("softmax", "knn")
#: The network reads frames this many times the output height (the labels stay at the output height).
#: 2 helps where actors are small in the frame (the synthetic set) and fails where they are large
#: (davis-dev): the network works at the object scale it trained at (docs/train.md, "Prediction
#: height and input scale").
DEFAULT_SCALE = 1.0
#: The smallest multiple of the output height the network may read frames at.
MIN_SCALE = 0.1
#: Multi-scale inference: the multiples of ``scale`` the network reads each frame at, its class
#: probabilities averaged on the finest grid (SPML's inference scripts: 0.5, 0.75, 1, 1.25, 1.5 with
#: flips); (1,): one pass. Without the CRF higher on the training videos, with it lower (docs/decisions/0042).
DEFAULT_MULTI_SCALE: tuple[float, ...] = (1.0,)
#: Which classes' probability counts for a video's tag when decoding among its tags (:func:`vscr_cli.stages.predict.tag_votes`):
#: ``actor`` (an actor's other classes count for its tag): with the dense CRF, on the cpu preset's models,
#: +4.3 on the synthetic test videos and level on davis-dev, every seed; ``class`` is SPML's restriction
#: (docs/train.md, "Tag votes").
DEFAULT_TAG_VOTES = "actor"
#: Whether ``vscr predict`` sharpens the upsampled class maps with the dense CRF: on, as it lifts the
#: synthetic rows and, for networks trained with the cpu preset's crops, davis-dev's on every seed; the
#: paper's inference has none (``--no-crf``) (docs/train.md, "Dense CRF").
DEFAULT_CRF = True
#: The rows the dense CRF runs at where the labels have more (0: at the labels' own height), its
#: marginals upsampled: the cpu preset's network works at 160 rows, and there the CRF is 4-5x faster at
#: A2D's 320-px frames and, on davis (3 seeds), better on the network's side; ``vscr cam --crf`` runs
#: at the same rows so that both sides of the comparison get the same CRF (docs/decisions/0027).
DEFAULT_CRF_HEIGHT = 160
#: Whether ``vscr predict`` averages the network's outputs on each frame with those on its mirror image
#: (SPML's flipped inference; the network's time doubles).
DEFAULT_FLIP = False
#: How many frames on each side of a frame its class probabilities are fused with, warped along the
#: optical flow (:mod:`vscr_cli.core.temporal`; 0: each frame alone, the paper's inference): davis-dev
#: gains, the unseen davis-more videos lose (docs/decisions/0041).
DEFAULT_TEMPORAL = 0
#: How a pixel's class is decided from its probabilities (:func:`vscr_cli.stages.predict.decide`):
#: ``foreground`` (background only where it outweighs every other class together) or ``argmax``
#: (the paper's softmax). ``foreground`` keeps actors whose mass is spread over their actions.
DECISIONS = ("foreground", "argmax")
DEFAULT_DECISION = "foreground"
#: Where ``vscr predict`` looks for a model folder when ``-m`` is not given.
MODEL_ENV = "VSCR_MODEL"


def check_tag_votes(votes: str) -> None:
    """Refuse a ``votes`` that is not one of ``labels.TAG_VOTES`` (vscr predict and vscr refine, before any work)."""
    if votes not in labels.TAG_VOTES:
        raise VscrError(f"unknown tag votes {votes!r}; choose one of {', '.join(labels.TAG_VOTES)}")


def default_model() -> Path:
    """The folder ``vscr train`` writes without ``-o``, when there is one here."""
    if not DEFAULT_MODEL.is_dir():
        raise VscrError(f"{DEFAULT_MODEL}/: no model here (vscr train writes it without -o); pass -m FOLDER or set {MODEL_ENV}")
    return DEFAULT_MODEL


@dataclass(frozen=True)
class PredictParams:
    """What determines a pred store's content: recorded in its attrs (--resume checks it) and what
    :func:`vscr_cli.stages.predict.video_predictions` computes with. ``decode``: ``tags`` (each video among its tags),
    ``video`` or ``frame`` (see :func:`vscr_cli.stages.predict.video_predictions`); ``readout``: ``softmax`` or ``knn``
    (:meth:`vscr_cli.stages.predict.Predictor.logits`); ``tag_votes``: with tags, which classes count for a tag (:func:`vscr_cli.stages.predict.tag_votes`); ``crf``: the dense CRF (:mod:`vscr_cli.core.crf`, DeepLab's settings)
    on the decided classes' probabilities; ``video_decision``: how ``video`` decides (:data:`VIDEO_DECISIONS`)."""

    model_sha256: str = ""
    selection: dict = field(default_factory=dict)  # FrameSelection.to_json()
    prob: bool = False
    decode: str = "video"
    precision: str = "fp32"
    readout: str = "softmax"
    scale: float = DEFAULT_SCALE
    crf: bool = DEFAULT_CRF
    tag_votes: str = DEFAULT_TAG_VOTES
    video_decision: str = DEFAULT_VIDEO_DECISION
    decision: str = DEFAULT_DECISION
    crf_height: int = DEFAULT_CRF_HEIGHT  # the CRF at this many rows where the labels have more (0: at theirs)
    flip: bool = DEFAULT_FLIP  # the outputs averaged with those of the mirrored frames
    temporal: int = DEFAULT_TEMPORAL  # frames on each side whose probabilities are fused along flow
    multi_scale: tuple[float, ...] = DEFAULT_MULTI_SCALE  # multiples of the scale the outputs are averaged over

    def __post_init__(self) -> None:
        ratios = self.multi_scale if isinstance(self.multi_scale, (list, tuple)) else (self.multi_scale,)  # a preset's TOML list or number, a record's JSON list
        try:
            object.__setattr__(self, "multi_scale", tuple(float(ratio) for ratio in ratios))
        except (TypeError, ValueError):
            raise VscrError(f"multi_scale: expected numbers, not {self.multi_scale!r}") from None

    def to_json(self) -> dict:
        return asdict(self)

    def settings(self) -> dict:
        """The options a user chooses (``--print-config``): all but what the run fills in."""
        return {key: value for key, value in asdict(self).items() if key not in ("model_sha256", "selection", "precision")}

    def validate(self) -> None:
        """Refuse (one line) a value no option can have."""
        if self.decode not in (*DECODES, "tags"):
            raise VscrError(f"unknown decode {self.decode!r}; choose one of {', '.join(DECODES)} (or give --tags)")
        if self.readout not in READOUTS:
            raise VscrError(f"unknown readout {self.readout!r}; choose one of {', '.join(READOUTS)}")
        if not (math.isfinite(self.scale) and self.scale >= MIN_SCALE):
            raise VscrError(f"--scale must be at least {MIN_SCALE}, not {self.scale}")
        if not self.multi_scale or not all(math.isfinite(r) and r * self.scale >= MIN_SCALE for r in self.multi_scale) or len(set(self.multi_scale)) < len(self.multi_scale):
            raise VscrError(f"--multi-scale takes distinct multiples of --scale that keep it at {MIN_SCALE} or more, not {','.join(map(str, self.multi_scale)) or 'none'}")
        if self.multi_scale != (1.0,) and self.readout != "softmax":
            raise VscrError("--multi-scale averages the softmax head's probabilities; --readout knn reads the embedding")
        check_tag_votes(self.tag_votes)
        if self.video_decision not in VIDEO_DECISIONS:
            raise VscrError(f"unknown video decision {self.video_decision!r}; choose one of {', '.join(VIDEO_DECISIONS)}")
        check_crf_height(self.crf_height)
        if self.temporal < 0:
            raise VscrError(f"--temporal must be 0 or more frames, not {self.temporal}")
        if self.temporal and self.readout != "softmax":
            raise VscrError("--temporal fuses the softmax head's probabilities; --readout knn reads the embedding")
        if self.decision not in DECISIONS:
            raise VscrError(f"unknown decision {self.decision!r}; choose one of {', '.join(DECISIONS)}")


def check_crf_height(rows: int) -> None:
    """Refuse (one line) a CRF working height that is neither 0 (the labels' own) nor at least 8 rows."""
    if 0 < rows < 8:
        raise VscrError(f"--crf-height must be 0 (the labels' height) or at least 8, not {rows}")
