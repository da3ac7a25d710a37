"""Segment videos with a trained model: per frame A2D actor-action label maps, into a pred store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vscr_cli import weights
from vscr_cli.commands import write_per_video
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
from vscr_cli.stages.predict import Predictor, video_predictions
from vscr_cli.stages.train import MODEL_WEIGHTS, load_model

NAME = "predict"


def command(
    sources: Sources,
    model: Annotated[Path, typer.Option("-m", "--model", help="Model folder written by vscr train.")],
    output: Output = None,
    prob: Annotated[bool, typer.Option("--prob", help="Also store the class probabilities (T, 44, H, W) float16 (for vscr align --use-prob).")] = False,
    every: Every = 1,
    max_frames: MaxFrames = None,
    annotated_only: AnnotatedOnly = False,
    height: Annotated[int | None, typer.Option("--height", min=8, help="Frame height (default: the height the model was trained at).")] = None,
    split: SplitOption = Split.all,
    batch_size: BatchSize = 4,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
    resume: Resume = False,
) -> None:
    target = resolve_output(output)
    torch_device = resolve_device(device)
    network, config, record = load_model(model, torch_device)
    frame_height = height if height is not None else record.get("frame_height")
    selection = frame_selection(every, max_frames, annotated_only, frame_height)
    videos = discover(sources, a2d_split=split.value)
    dtype = resolve_autocast(precision, torch_device)
    preprocessing = record["preprocessing"]
    predictor = Predictor(network, config, np.array(preprocessing["mean"], np.float32) * 255, np.array(preprocessing["std"], np.float32) * 255, torch_device, dtype)
    params = {
        "model_sha256": weights.sha256_file(model / MODEL_WEIGHTS),
        "selection": selection.to_json(),
        "prob": prob,
        "precision": str(dtype).removeprefix("torch.") if dtype else "fp32",
    }
    inputs = {"sources": [str(s) for s in sources], "split": split.value, "model": str(model)}
    write_per_video(
        target,
        "pred",
        params,
        inputs,
        videos,
        selection,
        lambda video, on_frames: video_predictions(video, selection, predictor, batch_size, prob, on_frames),
        overwrite=overwrite,
        resume=resume,
        skip_bad=skip_bad,
    )
