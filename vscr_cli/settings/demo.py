"""The demo's sizes (``vscr demo --size``), classes and output kind: plain data, importable without the pipeline's stages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

#: The kind of output the demo owns (store.check_output): its working folder.
DEMO = "demo"
#: Actor-action classes of the demo: adults and dogs, told apart by appearance, jumping or running, by motion.
DEMO_CLASSES = "15,17,75,77"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: the synthetic dataset, the frames training uses and the training length."""

    videos: int
    frames: int
    annotated: int  # ground-truth frames per video (scored, as in A2D)
    height: int
    width: int
    every: int  # training uses every Nth frame of the train split
    iterations: int
    crop: int | None  # the training crop; None: the cpu preset's
    fit_frames: int
    epochs: int


class Size(str, Enum):
    tiny = "tiny"
    small = "small"
    medium = "medium"


SIZES = {
    Size.tiny: DemoSize(videos=6, frames=6, annotated=2, height=64, width=96, every=1, iterations=6, crop=32, fit_frames=2, epochs=1),  # a smoke run (tests)
    Size.small: DemoSize(videos=32, frames=16, annotated=4, height=120, width=160, every=2, iterations=600, crop=None, fit_frames=8, epochs=3),  # the default
    Size.medium: DemoSize(videos=64, frames=24, annotated=4, height=120, width=160, every=2, iterations=1500, crop=None, fit_frames=8, epochs=3),
}
