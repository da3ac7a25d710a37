"""How a stage's run is made: the sources it takes, the output rule's options, which shard of the
videos and where (Dask) it runs, and the device and precision it computes with (:class:`Runtime`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vscr_cli.errors import SourceError

if TYPE_CHECKING:
    import torch

    from vscr_cli.video import VideoSource

#: The videos of an A2D root a run may take (``--split``).
SPLITS = ("train", "test", "all")
LOCAL_CLUSTER = "local:"


def check_source(path: Path) -> None:
    """Refuse (one line) a source path that does not exist."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")


def check_sources(sources: Sequence[str | Path]) -> None:
    """Refuse what discovering ``sources`` refuses first (none given, a path that does not exist),
    without reading them: a command checks this before it imports its stage."""
    if not sources:
        raise SourceError("no video sources given")
    for source in sources:
        check_source(Path(source))


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` of a run: the videos at 0-based positions p of the discovered
    list with ``p % count == index``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` with 0 <= I < N; raises ValueError otherwise."""
        index, _, count = text.partition("/")
        shard = cls(int(index), int(count))
        if not 0 <= shard.index < shard.count:
            raise ValueError(f"expected I/N with 0 <= I < N, got {text!r}")
        return shard

    def select(self, videos: Sequence[VideoSource]) -> list[VideoSource]:
        return list(videos[self.index :: self.count])

    def to_json(self, videos: Sequence[VideoSource]) -> dict[str, Any]:
        """The shard as recorded in its store's params: which part, and its videos in input order."""
        return {"index": self.index, "count": self.count, "videos": [v.video_id for v in self.select(videos)]}


def check_scheduler(address: str) -> str:
    """``local:N`` (N >= 1) or a scheduler address such as ``tcp://host:8786``; raises ValueError otherwise."""
    if address.startswith(LOCAL_CLUSTER):
        workers = address.removeprefix(LOCAL_CLUSTER)
        if not workers.isdigit() or int(workers) < 1:
            raise ValueError(f"expected local:N with N >= 1 worker processes, got {address!r}")
    elif ":" not in address:
        raise ValueError(f"expected local:N or a Dask scheduler address such as tcp://host:8786, got {address!r}")
    return address


@dataclass(frozen=True)
class RunOptions:
    """How a per-video stage runs: the output rule, unreadable videos, where (Dask) and which shard."""

    overwrite: bool = False
    resume: bool = False
    skip_bad: bool = False
    scheduler: str | None = None
    shard: Shard | None = None


@dataclass(frozen=True)
class Runtime:
    """Where and how a stage computes, apart from what it computes: the torch device, the autocast
    dtype (None: fp32) and the run options (the output rule, unreadable videos, Dask, the shard;
    training and refining read only the output rule)."""

    device: torch.device
    dtype: torch.dtype | None = None
    options: RunOptions = RunOptions()
