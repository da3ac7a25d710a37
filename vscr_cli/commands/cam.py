"""Actor activation maps (Grad-CAM++ of a fine-tuned classifier) and SLIC pseudo-labels, into a cam store."""

from __future__ import annotations

import contextlib
import enum
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
    Height,
    MaxFrames,
    Output,
    Overwrite,
    Precision,
    PrecisionOption,
    Resume,
    Scheduler,
    ShardOption,
    Seed,
    SkipBad,
    Sources,
    Split,
    SplitOption,
    Tags,
    Weights,
    frame_selection,
    resolve_autocast,
    resolve_device,
    resolve_output,
)
from vscr_cli.datasets import load_tags
from vscr_cli.datasets.a2d import find_release_root
from vscr_cli.sources import discover
from vscr_cli.stages.cam import (
    CLASSIFIER_WEIGHTS,
    DEFAULT_CAM_FLIP,
    DEFAULT_CAM_HEIGHTS,
    DEFAULT_CAM_PAD,
    DEFAULT_MOTION_GAP,
    DEFAULT_MOTION_WEIGHT,
    DEFAULT_THRESHOLD,
    DEFAULT_VIDEO_THRESHOLD,
    CamExtractor,
    CamParams,
    ClassifierConfig,
    cam_tag,
    fit_classifier,
    fitting_frames,
    load_classifier,
    load_extractor,
    save_classifier,
    video_cam,
)
from vscr_cli.stages.runner import VideoTask
from vscr_cli.store import check_parent
from vscr_cli.tags import require_tags

NAME = "cam"


class Arch(str, enum.Enum):
    tf_efficientnet_lite0 = "tf_efficientnet_lite0"
    resnet50 = "resnet50"


class NonePolicy(str, enum.Enum):
    unlabeled = "unlabeled"
    labeled = "labeled"


def command(
    sources: Sources,
    tags: Tags = None,
    output: Output = None,
    classifier: Annotated[Optional[Path], typer.Option(help="Folder of a fitted classifier: reused when it holds one, else the new one is saved there (default: OUTPUT.classifier).")] = None,
    arch: Annotated[Arch, typer.Option(help="Classifier: EfficientNet-Lite0 (ImageNet weights from the package index) or ResNet-50 (the paper's; torchvision's weights via torch.hub's cache).")] = Arch.tf_efficientnet_lite0,
    epochs: Annotated[int, typer.Option(min=1, help="Fine-tuning epochs.")] = ClassifierConfig.epochs,
    fit_frames: Annotated[int, typer.Option(min=2, help="Frames per single-tag video used to fine-tune.")] = ClassifierConfig.frames_per_video,
    input_height: Annotated[int, typer.Option(min=32, help="Frame height the classifier sees.")] = ClassifierConfig.input_height,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="A superpixel whose mean evidence reaches this takes the tag (with --fixed-threshold).")] = DEFAULT_THRESHOLD,
    video_threshold: Annotated[bool, typer.Option("--video-threshold/--fixed-threshold", help="Per-video Otsu threshold of the evidence, or --threshold for every video.")] = DEFAULT_VIDEO_THRESHOLD,
    cam_heights: Annotated[str, typer.Option(help="Frame heights at which activation maps are taken and averaged (comma-separated).")] = ",".join(map(str, DEFAULT_CAM_HEIGHTS)),
    cam_pad: Annotated[float, typer.Option(min=0.0, max=0.45, help="Reflect each classifier input by this fraction of its height on every side before the map is taken, and crop the map back.")] = DEFAULT_CAM_PAD,
    cam_flip: Annotated[bool, typer.Option("--cam-flip/--no-cam-flip", help="Average in the maps of the mirrored frames.")] = DEFAULT_CAM_FLIP,
    motion_weight: Annotated[float, typer.Option(min=0.0, max=1.0, help="Weight of camera-compensated motion in the evidence (0: activation maps only).")] = DEFAULT_MOTION_WEIGHT,
    motion_gap: Annotated[int, typer.Option(min=1, help="Frames between a frame and the one its flow goes to.")] = DEFAULT_MOTION_GAP,
    slic_segments: Annotated[int, typer.Option(min=2, help="SLIC superpixels per frame.")] = CamParams.slic_segments,
    none_tags: Annotated[NonePolicy, typer.Option(help="Single '<actor>-none' videos: unlabeled (paper, no CAM) or labeled.")] = NonePolicy.unlabeled,
    every: Every = 1,
    max_frames: MaxFrames = None,
    annotated_only: AnnotatedOnly = False,
    height: Height = None,
    split: SplitOption = Split.all,
    batch_size: BatchSize = 1,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    weights_file: Weights = None,
    seed: Seed = 0,
    skip_bad: SkipBad = False,
    overwrite: Overwrite = False,
    resume: Resume = False,
    scheduler: Scheduler = None,
    shard: ShardOption = None,
) -> None:
    target = resolve_output(output, overwrite, resume)
    heights = _heights(cam_heights)
    selection = frame_selection(every, max_frames, annotated_only, height)
    videos = discover(sources, a2d_split=split.value)
    tags = tags or _root_tags(sources)
    video_tags = require_tags([v.video_id for v in videos], load_tags(tags), tags)
    torch_device = resolve_device(device)
    folder = classifier or (target.with_name(target.name.split(".")[0] + ".classifier") if target else None)
    if folder is not None:
        check_parent(folder)
    if folder is not None and (folder / CLASSIFIER_WEIGHTS).is_file():
        model, config = load_classifier(folder, torch_device)
        console.log.info("reusing the classifier in %s (held-out accuracy %s)", folder, config.accuracy)
    else:
        config = ClassifierConfig(arch=arch.value, epochs=epochs, frames_per_video=fit_frames, input_height=input_height, seed=seed)
        model = _fit(videos, video_tags, selection, config, none_tags.value, weights_file, torch_device, resolve_autocast(precision, torch_device))
        if folder is not None:
            save_classifier(folder, model, config)
            console.log.info("saved the classifier to %s", folder)
        else:
            console.log.warning("the classifier is not saved (pass --classifier DIR to keep it)")
    params = CamParams(
        threshold=None if video_threshold else threshold,
        cam_heights=heights,
        cam_pad=cam_pad,
        cam_flip=cam_flip,
        motion_weight=motion_weight,
        motion_gap=motion_gap,
        slic_segments=slic_segments,
        none_policy=none_tags.value,
        classifier_sha256=weights.sha256_file(folder / CLASSIFIER_WEIGHTS) if folder else "",
        classifier_accuracy=config.accuracy,
        selection=selection.to_json(),
    )
    labeled = sum(cam_tag(video_tags[v.video_id], none_tags.value) is not None for v in videos)
    console.log.info("%d labeled videos get CAMs, %d are unlabeled", labeled, len(videos) - labeled)
    inputs = {"sources": [str(s) for s in sources], "split": split.value, "tags": str(tags), "classifier": str(folder) if folder else None}
    options = {"video_tags": video_tags, "selection": selection, "params": params, "batch_size": batch_size}
    with contextlib.ExitStack() as cleanup:
        if folder is not None:  # workers (and this process) load the saved classifier once each
            compute = VideoTask(video_cam, "extractor", load_extractor, (folder, params.classifier_sha256, torch_device, heights, cam_pad, cam_flip), options)
        elif scheduler is not None:
            raise VscrError("--scheduler: the workers load the classifier from a folder: pass -o PATH or --classifier DIR")
        else:
            extractor = CamExtractor(model, config, torch_device, heights, cam_pad, cam_flip)
            cleanup.callback(extractor.close)  # the Grad-CAM hooks
            compute = lambda video, on_frames: video_cam(video, extractor=extractor, on_frames=on_frames, **options)  # noqa: E731
        write_per_video(target, "cam", params.to_json(), inputs, videos, selection, compute, RunOptions(overwrite, resume, skip_bad, scheduler, shard))

def _fit(videos, video_tags, selection, config, none_policy, weights_file, device, dtype):
    imagenet = weights.load_state_dict(config.architecture.weights, weights_file)
    train, holdout = fitting_frames(videos, video_tags, selection, config, none_policy)
    console.log.info("fine-tuning %s on %d frames (%d held out)", config.arch, len(train), len(holdout))
    steps = config.epochs * -(-len(train) // config.batch_size)
    with console.progress() as bar:
        task = bar.add_task("fine-tuning", total=steps)
        model = fit_classifier(train, holdout, config, imagenet, device, dtype, lambda n: bar.advance(task, n))
    if config.accuracy is not None:
        console.log.info("held-out actor accuracy: %.1f%% on %d frames", 100 * config.accuracy, len(holdout))
    return model


def _root_tags(sources: list[str]) -> str:
    """The one A2D root among ``sources``, whose annotations give the tags when --tags is not given."""
    if len(sources) == 1 and find_release_root(Path(sources[0])) is not None:
        return sources[0]
    raise typer.BadParameter("needed unless the one source is an A2D Release root", param_hint="--tags")


def _heights(text: str) -> tuple[int, ...]:
    try:
        heights = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        heights = ()
    if not heights or min(heights) < 32:
        raise typer.BadParameter(f"expected comma-separated heights of at least 32 pixels, got {text!r}", param_hint="--cam-heights")
    return heights
