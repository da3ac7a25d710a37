"""CAM stage: an actor classifier fine-tuned on single-tag videos, Grad-CAM++ maps, SLIC pseudo-labels.

Paper Sec. 4.2: an ImageNet classifier (ResNet-50 there) is fine-tuned on the frames of the
single-action training videos to recognise the actor; Grad-CAM++ on its last convolutional
stage gives the tagged actor's activation map; SLIC superpixels whose mean activation reaches
the threshold (0.5) take the video's actor-action tag, the rest is background.

Modules: :mod:`.classifier` (which videos are labeled; the classifier, fitted or reused),
:mod:`.pseudo` (Grad-CAM++ maps, motion evidence, superpixels, pseudo-labels), :mod:`.run` (``vscr cam``).

Labeled and unlabeled samples (Sec. 3.3): a video with exactly one tag gets CAM pseudo-labels
(D_c); a video with several tags or none gets no CAM (D_u: ``pseudo`` is 255 everywhere).
The paper names the ``none`` action as the reason unlabeled samples exist ("this unlabeled
sample is not avoidable since we have none category in the dataset"): its CAMs come from a
classifier of single-action clips. Ours recognises actors, which a ``<actor>-none`` video shows
as well as any, so by default such a video is labeled (``none_policy="labeled"``, measured on
davis-dev: docs/cam.md); ``none_policy="unlabeled"`` is the paper's rule.
"""

from vscr_cli.stages.cam.classifier import (
    CLASSIFIER_CONFIG,
    CLASSIFIER_KIND,
    CLASSIFIER_WEIGHTS,
    STORE_SUFFIXES,
    LabeledFrame,
    cam_tag,
    classifier_folder,
    fit_classifier,
    fitting_frames,
    load_classifier,
    read_classifier_config,
    reusable_classifier,
    save_classifier,
)
from vscr_cli.stages.cam.pseudo import CamExtractor, evidence, motion_partners, pseudo_label, pseudo_labels, superpixels, video_cam, video_threshold
from vscr_cli.stages.cam.run import SCHEMA, run

__all__ = [
    "CLASSIFIER_CONFIG",
    "CLASSIFIER_KIND",
    "CLASSIFIER_WEIGHTS",
    "CamExtractor",
    "LabeledFrame",
    "SCHEMA",
    "STORE_SUFFIXES",
    "cam_tag",
    "classifier_folder",
    "evidence",
    "fit_classifier",
    "fitting_frames",
    "load_classifier",
    "motion_partners",
    "pseudo_label",
    "pseudo_labels",
    "read_classifier_config",
    "reusable_classifier",
    "run",
    "save_classifier",
    "superpixels",
    "video_cam",
    "video_threshold",
]
