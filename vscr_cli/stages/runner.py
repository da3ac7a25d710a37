"""The loop every per-video stage shares: skip what a resumed store has, compute, write, record.

A run maps its videos in this process (:func:`run_videos`) or over the workers of a Dask
cluster (:func:`run_videos_on`), and may take only one shard of them (:class:`vscr_cli.settings.run.Shard`);
:func:`write_per_video` does either into a store, with progress bars.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vscr_cli import console
from vscr_cli.errors import SourceError, VscrError
from vscr_cli.settings.run import LOCAL_CLUSTER, RunOptions
from vscr_cli.store import SOURCE_DIGEST, StoreWriter, write_video_group
from vscr_cli.video import FrameSelection, VideoSource

if TYPE_CHECKING:
    from distributed import Client

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

    def skip(self, writer: StoreWriter, video_id: str, reason: str) -> None:
        log.warning("skipping %s: %s", video_id, reason)
        writer.skip(video_id, reason)
        self.skipped.append((video_id, reason))


@functools.lru_cache(maxsize=2)
def per_process(factory: Callable[..., Any], *args: Hashable) -> Any:
    """``factory(*args)`` made once per process and kept: a model on a device, built once per
    Dask worker. The arguments name the weights by path and sha256, so new weights make a new one."""
    return factory(*args)


@dataclass(frozen=True)
class VideoTask:
    """A per-video stage as plain data, so that it pickles to Dask workers.

    Calling it runs ``function(video, **options, on_frames=..., <model>=per_process(factory, *factory_args))``.
    """

    function: Callable[..., VideoResult]
    model: str  # the name of the function's argument that takes the model
    factory: Callable[..., Any]
    factory_args: tuple[Hashable, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, video: VideoSource, on_frames: Callable[[int], None] | None = None) -> VideoResult:
        built = per_process(self.factory, *self.factory_args)
        return self.function(video, **self.options, on_frames=on_frames, **{self.model: built})


def _compute(compute: Callable[[VideoSource], VideoResult], video: VideoSource, skip_bad: bool) -> VideoResult | str:
    """One video's result, or with ``skip_bad`` the reason it could not be read."""
    try:
        return compute(video)
    except SourceError as error:
        if not skip_bad:
            raise
        return str(error)


def _attrs(video: VideoSource, result: VideoResult) -> dict[str, Any]:
    """A video group's attributes: the stage's, and the digest of the footage it was made from."""
    return {**result.attrs, SOURCE_DIGEST: video.digest()}


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
            result = _compute(compute, video, skip_bad)
            if isinstance(result, str):
                report.skip(writer, video.video_id, result)
            else:
                writer.write_video(video.video_id, result.frame_index, result.arrays, _attrs(video, result))
                report.written.append(video.video_id)
        if on_video is not None:
            on_video(video)
    return report


def _write_on_worker(video: VideoSource, location: Path, compute: Callable[..., VideoResult], skip_bad: bool) -> tuple[int, str | None]:
    """On a Dask worker: compute one video and write its group into the run's partial store.
    Returns (frames written, None) or (0, why the video was skipped)."""
    result = _compute(compute, video, skip_bad)
    if isinstance(result, str):
        return 0, result
    write_video_group(location, video.video_id, result.frame_index, result.arrays, _attrs(video, result))
    return len(result.frame_index), None


def run_videos_on(
    client: Client,
    videos: Sequence[VideoSource],
    writer: StoreWriter,
    compute: Callable[..., VideoResult],
    skip_bad: bool = False,
    on_video: Callable[[VideoSource, int], None] | None = None,
) -> RunReport:
    """:func:`run_videos` over the workers of a Dask cluster: each worker writes its videos'
    groups into ``writer.partial`` (a filesystem the workers share), and this process records
    each as complete when its task finishes. ``compute`` must pickle (e.g. a :class:`VideoTask`);
    ``on_video(video, frames)`` follows completion. The record lists the videos in input order at the end.
    """
    from distributed import as_completed

    report = RunReport(resumed=[v.video_id for v in videos if v.video_id in writer.completed])
    todo = [v for v in videos if v.video_id not in writer.completed]
    futures = client.map(_write_on_worker, todo, location=writer.partial, compute=compute, skip_bad=skip_bad, pure=False)
    video_of = {future.key: video for future, video in zip(futures, todo)}
    for future in as_completed(futures):
        video = video_of[future.key]
        frames, skipped = future.result()
        if skipped is None:
            writer.complete(video.video_id)
            report.written.append(video.video_id)
        else:
            report.skip(writer, video.video_id, skipped)
        if on_video is not None:
            on_video(video, frames)
    writer.order([v.video_id for v in videos])
    return report


@contextmanager
def dask_client(address: str) -> Iterator[Client]:
    """A Dask client of the scheduler at ``address``, or of a LocalCluster of N single-threaded
    worker processes started for this run (``local:N``, stopped at the end)."""
    from distributed import Client, LocalCluster

    if address.startswith(LOCAL_CLUSTER):
        workers = int(address.removeprefix(LOCAL_CLUSTER))
        environment = dict(os.environ)  # Dask sets OMP_NUM_THREADS=1 etc. here for its workers: keep ours
        try:
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
                yield client
        finally:
            os.environ.clear()
            os.environ.update(environment)
    else:
        try:
            client = Client(address, timeout="30s")
        except OSError as error:  # includes timeouts
            raise VscrError(f"--scheduler {address}: cannot reach the Dask scheduler ({error})") from error
        with client:
            yield client


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
        writer.check_resumed({video.video_id: (str(video.path), video.digest) for video in videos})
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
