"""vscr edges' parameters: the UCM cut level and what an edges store records."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

DEFAULT_THRESHOLD = 0.4


@dataclass(frozen=True)
class EdgeParams:
    """What determines an edges store's content: recorded in its attrs (--resume checks it) and
    what :func:`vscr_cli.stages.edges.video_edges` computes with."""

    threshold: float = DEFAULT_THRESHOLD
    weights_sha256: str = ""
    precision: str = "fp32"  # the autocast dtype actually used: fp32, bfloat16 or float16
    selection: dict = field(default_factory=dict)  # FrameSelection.to_json()

    def to_json(self) -> dict:
        return asdict(self)
