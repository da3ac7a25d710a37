"""HED edge maps and hierarchical edge segmentation (UCM cut) of every frame, into an edges store."""

from __future__ import annotations

from typing import Annotated

import typer

from vscr_cli import console, weights
from vscr_cli.commands import RunOptions, write_per_video
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
    Scheduler,
    ShardOption,
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
from vscr_cli.stages.edges import DEFAULT_THRESHOLD, EdgeParams, load_edge_detector, video_edges
from vscr_cli.stages.runner import VideoTask

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
    scheduler: Scheduler = None,
    shard: ShardOption = None,
) -> None:
    target = resolve_output(output, overwrite, resume)
    selection = frame_selection(every, max_frames, annotated_only, height)
    videos = discover(sources, a2d_split=split.value)
    torch_device = resolve_device(device)
    dtype = resolve_autocast(precision, torch_device)
    weights_path = weights.resolve("hed-bsds500", weights_file)
    params = EdgeParams(
        threshold=threshold,
        weights_sha256=weights.sha256_file(weights_path),
        precision=str(dtype).removeprefix("torch.") if dtype else "fp32",
        selection=selection.to_json(),
    )
    compute = VideoTask(
        video_edges,
        "detector",
        load_edge_detector,
        (weights_path, params.weights_sha256, torch_device, dtype),
        {"selection": selection, "threshold": threshold, "batch_size": batch_size},
    )
    console.log.info("HED on %s (%s), %d videos", torch_device, params.precision, len(videos))
    inputs = {"sources": [str(s) for s in sources], "split": split.value}
    write_per_video(target, "edges", params.to_json(), inputs, videos, selection, compute, RunOptions(overwrite, resume, skip_bad, scheduler, shard))
