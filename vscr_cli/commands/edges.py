"""HED edge maps and hierarchical edge segmentation (UCM cut) of every frame, into an edges store."""

from __future__ import annotations

from typing import Annotated

import typer

from vscr_cli import console, weights
from vscr_cli.commands import write_per_video
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
        selection=selection.to_json(),
    )
    detector = EdgeDetector(weights.load_local_state_dict(weights_path), torch_device, dtype)
    console.log.info("HED on %s (%s), %d videos", torch_device, params.precision, len(videos))
    inputs = {"sources": [str(s) for s in sources], "split": split.value}
    write_per_video(
        target,
        "edges",
        params.to_json(),
        inputs,
        videos,
        selection,
        lambda video, on_frames: video_edges(video, selection, detector, threshold, batch_size, on_frames),
        overwrite=overwrite,
        resume=resume,
        skip_bad=skip_bad,
    )
