"""vscr cam's parameters: the classifier's fitting (:class:`ClassifierConfig`, saved beside it) and
the maps and pseudo-labels a cam store holds (:class:`CamParams`, recorded in it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from vscr_cli import labels
from vscr_cli.core.models.architectures import architecture, names
from vscr_cli.errors import VscrError
from vscr_cli.settings.predict import DEFAULT_CRF_HEIGHT

if TYPE_CHECKING:
    from vscr_cli.core.models.architectures import Architecture

#: The architectures a classifier can be (the registry's with the ``classifier`` capability).
ARCHITECTURES = names("classifier")
NONE_POLICIES = ("labeled", "unlabeled")
DEFAULT_NONE_POLICY = "labeled"
DEFAULT_THRESHOLD = 0.5
DEFAULT_VIDEO_THRESHOLD = False
DEFAULT_CAM_HEIGHTS = (224, 448)
DEFAULT_CAM_PAD = 0.0
DEFAULT_CAM_FLIP = False
#: None: per frame, each cue weighted by how little of the frame it claims (`--motion-evidence auto`,
#: docs/decisions/0038); a number: that fixed share of motion (0.4 before 0038, 0: the paper's map alone).
DEFAULT_MOTION_WEIGHT: float | None = None
DEFAULT_MOTION_GAP = 1
#: Superpixels whose mean evidence is within this of the threshold, below it, are left unlabelled
#: (ignored by training) instead of background (docs/cam.md, "The pseudo-labels through the dense CRF").
DEFAULT_DOUBT_BAND = 0.0
#: Whether the pseudo-labels go through the dense CRF of vscr predict (docs/cam.md, "The pseudo-labels through the dense CRF").
DEFAULT_CAM_CRF = False
#: --ignore-disagreement: the cues of which one alone at the threshold leaves a superpixel the mixed
#: evidence calls background unlabelled (off: none; class-map: a crowd of the actor's class; any: a
#: moving background too).
DISAGREEMENT_CUES = {"off": (), "class-map": ("activation",), "any": ("activation", "motion")}
DEFAULT_IGNORE_DISAGREEMENT = "off"
#: SLIC runs on the frame shrunk to this many rows where it has more, its superpixels resized back
#: (0: at the frame's height); chosen by measurement (docs/decisions/0029-slic-height.md).
DEFAULT_SLIC_HEIGHT = 240


@dataclass
class ClassifierConfig:
    """Everything needed to rebuild and use a fitted classifier (saved as JSON beside its weights)."""

    arch: str = "tf_efficientnet_lite0"
    input_height: int = 224
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 3e-4
    frames_per_video: int = 16
    holdout_fraction: float = 0.2
    seed: int = 0
    classes: list[str] = field(default_factory=lambda: list(labels.ACTORS))
    accuracy: float | None = None  # held-out accuracy, filled by fit_classifier
    holdout_frames: int = 0
    train_frames: int = 0
    fitted_actors: list[str] | None = None  # the actors of the frames it was fine-tuned on (None: not recorded)

    def settings(self) -> dict:
        """The fitting's settings (``--print-config``): all but what fitting records of itself."""
        return {key: value for key, value in asdict(self).items() if key not in ("accuracy", "holdout_frames", "train_frames", "fitted_actors")}

    def validate(self) -> None:
        """Refuse (one line) an architecture a classifier cannot have."""
        try:
            architecture(self.arch, "classifier", "classifier architecture")
        except ValueError as error:
            raise VscrError(str(error)) from None

    @property
    def architecture(self) -> Architecture:
        """The registered architecture (a VscrError for one a classifier cannot have)."""
        self.validate()
        return architecture(self.arch, "classifier")


@dataclass(frozen=True)
class CamParams:
    """What determines a cam store's content: recorded in its attrs (--resume checks it) and what
    :func:`vscr_cli.stages.cam.video_cam` computes with.

    ``threshold`` None means a per-video (Otsu) threshold.
    """

    threshold: float | None = None if DEFAULT_VIDEO_THRESHOLD else DEFAULT_THRESHOLD
    cam_heights: tuple[int, ...] = DEFAULT_CAM_HEIGHTS
    cam_pad: float = DEFAULT_CAM_PAD
    cam_flip: bool = DEFAULT_CAM_FLIP
    motion_weight: float | None = DEFAULT_MOTION_WEIGHT  # None: each frame's weight from the cues' spread (--motion-evidence auto)
    motion_gap: int = DEFAULT_MOTION_GAP
    slic_segments: int = 150
    slic_height: int = DEFAULT_SLIC_HEIGHT  # SLIC at this many rows where the frames have more (0: at theirs)
    none_policy: str = DEFAULT_NONE_POLICY
    doubt_band: float = DEFAULT_DOUBT_BAND  # superpixels this far below the threshold are left unlabelled
    ignore_disagreement: str = DEFAULT_IGNORE_DISAGREEMENT  # which cue alone at the threshold leaves a background superpixel unlabelled (DISAGREEMENT_CUES)
    crf: bool = DEFAULT_CAM_CRF  # the pseudo-labels sharpened by the dense CRF (core.crf.crf_labels)
    crf_height: int = DEFAULT_CRF_HEIGHT  # the CRF at this many rows where the frames have more (0: at theirs), as vscr predict's
    classifier_sha256: str = ""
    classifier_accuracy: float | None = None
    selection: dict = field(default_factory=dict)  # FrameSelection.to_json()
    precision: str = "fp32"  # the classifier's autocast for the maps (core.precision.dtype_name)

    def to_json(self) -> dict:
        return asdict(self)

    def settings(self) -> dict:
        """The options a user chooses (``--print-config``): all but what the run fills in."""
        return {key: value for key, value in asdict(self).items() if key not in ("classifier_sha256", "classifier_accuracy", "selection", "precision")}
