"""The loop every per-video stage shares: skip what a resumed store has, compute, write, record."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vscr_cli.errors import SourceError
from vscr_cli.sources import VideoSource
from vscr_cli.store import StoreWriter

log = logging.getLogger("vscr")


@dataclass
class VideoResult:
    """A stage's output for one video: (T,) frame numbers and (T, ...) arrays."""

    frame_index: Sequence[int]
    arrays: dict[str, np.ndarray]
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    written: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def run_videos(
    videos: Sequence[VideoSource],
    writer: StoreWriter,
    compute: Callable[[VideoSource], VideoResult],
    skip_bad: bool = False,
    on_video: Callable[[VideoSource], None] | None = None,
) -> RunReport:
    """Compute and write each video not yet in ``writer`` (a resumed store keeps its videos).

    A video whose source cannot be read stops the run with its SourceError, or with
    ``skip_bad`` is recorded in the store's ``skipped`` list and left out.
    """
    report = RunReport()
    for video in videos:
        if video.video_id in writer.completed:
            report.resumed.append(video.video_id)
        else:
            try:
                result = compute(video)
            except SourceError as error:
                if not skip_bad:
                    raise
                log.warning("skipping %s: %s", video.video_id, error)
                writer.skip(video.video_id, str(error))
                report.skipped.append((video.video_id, str(error)))
            else:
                writer.write_video(video.video_id, result.frame_index, result.arrays, result.attrs)
                report.written.append(video.video_id)
        if on_video is not None:
            on_video(video)
    return report


def frame_batches(
    frames: Iterable[tuple[int, np.ndarray]], batch_size: int, on_frames: Callable[[int], None] | None = None
) -> Iterator[np.ndarray]:
    """Group (frame number, (H, W, 3) frame) pairs into (B, H, W, 3) batches of one frame size.

    ``on_frames`` is told how many frames each batch held once the caller has consumed it.
    """
    batch: list[np.ndarray] = []
    for _, frame in frames:
        if batch and (frame.shape != batch[0].shape or len(batch) == batch_size):
            yield np.stack(batch)
            if on_frames is not None:
                on_frames(len(batch))
            batch = []
        batch.append(frame)
    if batch:
        yield np.stack(batch)
        if on_frames is not None:
            on_frames(len(batch))
