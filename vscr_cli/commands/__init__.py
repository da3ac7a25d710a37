"""One module per subcommand: each defines NAME and a thin ``command`` over importable functions."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vscr_cli import console
from vscr_cli.errors import VscrError
from vscr_cli.video import FrameSelection, VideoSource
from vscr_cli.stages.runner import LOCAL_CLUSTER, RunReport, Shard, VideoResult, dask_client, run_videos, run_videos_on
from vscr_cli.store import StoreWriter


@dataclass(frozen=True)
class RunOptions:
    """How a per-video stage runs: the output rule, unreadable videos, where (Dask) and which shard."""

    overwrite: bool = False
    resume: bool = False
    skip_bad: bool = False
    scheduler: str | None = None
    shard: Shard | None = None


def write_per_video(
    target: Path | None,
    kind: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, Any],
    videos: Sequence[VideoSource],
    selection: FrameSelection,
    compute: Callable[..., VideoResult],
    run: RunOptions,
) -> RunReport:
    """Run a per-video stage into a store with progress bars for videos and frames, then log what was done.

    ``compute(video, on_frames)`` returns one video's result and calls ``on_frames(n)`` as it goes.
    With ``run.scheduler`` (``local:N`` or a Dask scheduler address) the videos are mapped over
    Dask workers, which then get ``compute`` pickled. With ``run.shard`` only that shard's
    videos are run and the shard is recorded in the params.
    """
    scheduler, shard, skip_bad = run.scheduler, run.shard, run.skip_bad
    if shard is not None:
        params = {**params, "shard": shard.to_json(videos)}
        videos = shard.select(videos)
    if scheduler is not None and target is None and not scheduler.startswith(LOCAL_CLUSTER):
        raise VscrError(f"--scheduler {scheduler}: workers write into the output, so pass -o PATH on a filesystem they share")
    cluster = dask_client(scheduler) if scheduler is not None else contextlib.nullcontext()
    with cluster as client, StoreWriter(target, kind=kind, params=params, inputs=inputs, overwrite=run.overwrite, resume=run.resume) as writer, console.progress() as bar:
        video_task = bar.add_task("videos", total=len(videos))
        frame_task = bar.add_task("frames", total=None)
        if client is None:

            def run_one(video: VideoSource) -> VideoResult:
                bar.reset(frame_task, total=len(video.select(selection)), description=video.video_id)
                return compute(video, lambda count: bar.advance(frame_task, count))

            report = run_videos(videos, writer, run_one, skip_bad=skip_bad, on_video=lambda _: bar.advance(video_task))
        else:
            console.log.info("mapping %d videos over the Dask workers of %s", len(videos), scheduler)

            def done(_: VideoSource, frames: int) -> None:
                bar.advance(video_task)
                bar.advance(frame_task, frames)

            report = run_videos_on(client, videos, writer, compute, skip_bad=skip_bad, on_video=done)
    console.log.info(
        "wrote %d videos%s%s",
        len(report.written),
        f", kept {len(report.resumed)} from the earlier run" if report.resumed else "",
        f", skipped {len(report.skipped)} unreadable" if report.skipped else "",
    )
    return report
