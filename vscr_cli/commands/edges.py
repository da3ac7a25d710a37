"""HED edge maps and hierarchical edge segmentation (UCM cut) of every frame, into an edges store."""

from __future__ import annotations

from typing import Annotated

import typer

from vscr_cli import console, weights
from vscr_cli.options import (
    AnnotatedOnly,
    BatchSize,
    DeviceOption,
    Every,
    Height,
    MaxFrames,
    Output,
    Overwrite,
    PrecisionOption,
    Resume,
    SkipBad,
    Sources,
    SplitOption,
    Weights,
    Device,
    Precision,
    Split,
    frame_selection,
    resolve_autocast,
    resolve_device,
    resolve_output,
)
from vscr_cli.sources import discover
from vscr_cli.stages.edges import DEFAULT_THRESHOLD, EdgeDetector, EdgeParams, video_edges
from vscr_cli.stages.runner import run_videos
from vscr_cli.store import StoreWriter

NAME = "edges"


def command(
    sources: Sources,
    output: Output = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="UCM cut level in [0, 1]: higher gives fewer, larger regions.")] = DEFAULT_THRESHOLD,
    every: Every = 1,
    max_frames: MaxFrames = None,
    annotated_only: AnnotatedOnly = False,
    height: Height = None,
    split: SplitOption = Split.all,
    batch_size: BatchSize = 4,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    weights_file: Weights = None,
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
    resume: Resume = False,
) -> None:
    target = resolve_output(output)
    selection = frame_selection(every, max_frames, annotated_only, height)
    videos = discover(sources, a2d_split=split.value)
    torch_device = resolve_device(device)
    dtype = resolve_autocast(precision, torch_device)
    weights_path = weights.resolve("hed-bsds500", weights_file)
    params = EdgeParams(
        threshold=threshold,
        weights_sha256=weights.sha256_file(weights_path),
        precision=str(dtype).removeprefix("torch.") if dtype else "fp32",
        height=height,
        every=every,
        max_frames=max_frames,
        annotated_only=annotated_only,
    )
    detector = EdgeDetector(weights.load_local_state_dict(weights_path), torch_device, dtype)
    console.log.info("HED on %s (%s), %d videos", torch_device, params.precision, len(videos))
    inputs = {"sources": [str(s) for s in sources], "split": split.value}
    with StoreWriter(target, kind="edges", params=params.to_json(), inputs=inputs, overwrite=overwrite, resume=resume) as writer, console.progress() as bar:
        video_task = bar.add_task("videos", total=len(videos))
        frame_task = bar.add_task("frames", total=None)

        def compute(video):
            bar.reset(frame_task, total=len(video.select(selection)), description=video.video_id)
            return video_edges(video, selection, detector, threshold, batch_size, lambda n: bar.advance(frame_task, n))

        report = run_videos(videos, writer, compute, skip_bad=skip_bad, on_video=lambda _: bar.advance(video_task))
    console.log.info(
        "wrote %d videos%s%s",
        len(report.written),
        f", kept {len(report.resumed)} from the interrupted run" if report.resumed else "",
        f", skipped {len(report.skipped)} unreadable" if report.skipped else "",
    )
