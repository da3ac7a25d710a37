"""vscr refine's parameters: the prototype bank's votes and the head's retraining (recorded in the model it writes)."""

from __future__ import annotations

from dataclasses import dataclass

from vscr_cli.core.params import NEIGHBOURS
from vscr_cli.settings.predict import check_tag_votes


@dataclass
class RefineParams:
    """What vscr refine records and does."""

    neighbours: int = NEIGHBOURS  # prototypes voting for each segment
    rounds: int = 1  # bank -> refined labels, repeated
    epochs: int = 20  # passes of the head over all training pixels
    learning_rate: float = 1e-3  # Adam, for the head
    batch_pixels: int = 4096
    seed: int = 0
    tag_votes: str = "actor"  # one of labels.TAG_VOTES (docs/train.md: not worse on the synthetic set, better on davis-dev)

    def __post_init__(self) -> None:
        check_tag_votes(self.tag_votes)
