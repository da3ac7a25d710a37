"""Segment videos with a trained model: per frame A2D actor-action label maps, into a pred store."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscr_cli import console, weights
from vscr_cli.commands import RunOptions, write_per_video
from vscr_cli.errors import VscrError
from vscr_cli.options import (
    AnnotatedOnly,
    BatchSize,
    Device,
    DeviceOption,
    Every,
    MaxFrames,
    Output,
    Overwrite,
    Precision,
    PrecisionOption,
    Resume,
    Scheduler,
    ShardOption,
    SkipBad,
    Sources,
    Split,
    SplitOption,
    frame_selection,
    resolve_autocast,
    resolve_device,
    resolve_output,
)
from vscr_cli.sources import discover
from vscr_cli.stages.predict import READOUTS, load_predictor, video_predictions
from vscr_cli.stages.runner import VideoTask, per_process
from vscr_cli.stages.train import DEFAULT_MODEL, MODEL_WEIGHTS
from vscr_cli.tags import load_tags, require_tags

NAME = "predict"
MODEL_ENV = "VSCR_MODEL"


def default_model() -> Path:
    """The folder ``vscr train`` writes without ``-o``, when there is one here."""
    if not DEFAULT_MODEL.is_dir():
        raise VscrError(f"{DEFAULT_MODEL}/: no model here (vscr train writes it without -o); pass -m FOLDER or set {MODEL_ENV}")
    return DEFAULT_MODEL


Readout = Enum("Readout", {name: name for name in READOUTS}, type=str)


class Decode(str, Enum):
    video = "video"
    frame = "frame"


def command(
    sources: Sources,
    model: Annotated[
        Optional[Path],
        typer.Option("-m", "--model", envvar=MODEL_ENV, show_default=False, help=f"Model folder written by vscr train (default: ${MODEL_ENV}, else {DEFAULT_MODEL}/)."),
    ] = None,
    output: Output = None,
    prob: Annotated[bool, typer.Option("--prob", help="Also store the class probabilities (T, 44, H, W) float16 (for vscr align --use-prob).")] = False,
    every: Every = 1,
    max_frames: MaxFrames = None,
    annotated_only: AnnotatedOnly = False,
    height: Annotated[int | None, typer.Option("--height", min=8, help="Frame height (default: the height the model was trained at).")] = None,
    split: SplitOption = Split.all,
    tags: Annotated[str | None, typer.Option("--tags", help="Tags CSV or A2D root: decode each video among background and its tags.")] = None,
    decode: Annotated[Decode, typer.Option("--decode", help="Without --tags: 'video' decides each video's classes from all its frames first, 'frame' decodes every frame among all classes.")] = Decode.video,
    readout: Annotated[Readout, typer.Option("--readout", help="softmax: the network's head; knn: votes of the model's prototype bank (a model from vscr refine).")] = Readout.softmax,
    batch_size: BatchSize = 4,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
    resume: Resume = False,
    scheduler: Scheduler = None,
    shard: ShardOption = None,
) -> None:
    target = resolve_output(output, overwrite, resume, pipe="| vscr align, | vscr score")
    model = model or default_model()
    console.log.info("model: %s", model)
    torch_device = resolve_device(device)
    dtype = resolve_autocast(precision, torch_device)
    model_sha256 = weights.sha256_file(model / MODEL_WEIGHTS) if (model / MODEL_WEIGHTS).is_file() else ""
    factory_args = (model, model_sha256, torch_device, dtype)
    predictor = per_process(load_predictor, *factory_args)
    frame_height = height if height is not None else predictor.frame_height
    selection = frame_selection(every, max_frames, annotated_only, frame_height)
    videos = discover(sources, a2d_split=split.value)
    video_tags = require_tags([v.video_id for v in videos], load_tags(tags), tags) if tags else None
    params = {
        "model_sha256": model_sha256,
        "selection": selection.to_json(),
        "prob": prob,
        "decode": "tags" if tags else decode.value,
        "readout": readout.value,
        "precision": str(dtype).removeprefix("torch.") if dtype else "fp32",
    }
    inputs = {"sources": [str(s) for s in sources], "split": split.value, "model": str(model), "tags": tags}
    compute = VideoTask(video_predictions, "predictor", load_predictor, factory_args, {"selection": selection, "batch_size": batch_size, "keep_prob": prob, "tags": video_tags, "decode": decode.value, "readout": readout.value})
    write_per_video(target, "pred", params, inputs, videos, selection, compute, RunOptions(overwrite, resume, skip_bad, scheduler, shard))
