"""One module per subcommand: each defines NAME and a thin ``command`` over importable functions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vscr_cli import console
from vscr_cli.sources import FrameSelection, VideoSource
from vscr_cli.stages.runner import RunReport, VideoResult, run_videos
from vscr_cli.store import StoreWriter


def write_per_video(
    target: Path | None,
    kind: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    videos: Sequence[VideoSource],
    selection: FrameSelection,
    compute: Callable[[VideoSource, Callable[[int], None]], VideoResult],
    *,
    overwrite: bool,
    resume: bool,
    skip_bad: bool,
) -> RunReport:
    """Run a per-video stage into a store with progress bars for videos and frames, then log what was done.

    ``compute(video, on_frames)`` returns one video's result and calls ``on_frames(n)`` as it goes.
    """
    with StoreWriter(target, kind=kind, params=params, inputs=inputs, overwrite=overwrite, resume=resume) as writer, console.progress() as bar:
        video_task = bar.add_task("videos", total=len(videos))
        frame_task = bar.add_task("frames", total=None)

        def run_one(video: VideoSource) -> VideoResult:
            bar.reset(frame_task, total=len(video.select(selection)), description=video.video_id)
            return compute(video, lambda count: bar.advance(frame_task, count))

        report = run_videos(videos, writer, run_one, skip_bad=skip_bad, on_video=lambda _: bar.advance(video_task))
    console.log.info(
        "wrote %d videos%s%s",
        len(report.written),
        f", kept {len(report.resumed)} from the earlier run" if report.resumed else "",
        f", skipped {len(report.skipped)} unreadable" if report.skipped else "",
    )
    return report
