"""Train the two-stream VSCR network on edges and cam stores under the unified contrastive objective."""

from __future__ import annotations

import contextlib
import enum
import shutil
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vscr_cli import console, weights
from vscr_cli.errors import VscrError
from vscr_cli.options import (
    Device,
    DeviceOption,
    Overwrite,
    Precision,
    PrecisionOption,
    Resume,
    resolve_autocast,
    resolve_device,
)
from vscr_cli.stages.train import (
    PRESETS,
    TrainConfig,
    build_frame_cache,
    distributed_from_env,
    make_config,
    open_frame_cache,
    open_training_inputs,
    train,
)
from vscr_cli.store import OutputLock

NAME = "train"
Preset = enum.Enum("Preset", {name: name for name in PRESETS}, type=str)


class Backbone(str, enum.Enum):
    tf_efficientnet_lite0 = "tf_efficientnet_lite0"
    resnet50 = "resnet50"
    resnet101 = "resnet101"


class Motion(str, enum.Enum):
    flow = "flow"
    i3d = "i3d"
    none = "none"


def _option(help_text: str, *names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help_text, show_default=False, **kwargs)


def command(
    edges: Annotated[str, typer.Option("--edges", help="Edges store (vscr edges).")],
    cam: Annotated[str, typer.Option("--cam", help="Cam store (vscr cam) of the same videos and frames.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write.")],
    sources: Annotated[Optional[list[str]], typer.Argument(help="The videos the stores were made from (default: the sources the edges store records).", show_default=False)] = None,
    tags: Annotated[Optional[str], typer.Option("--tags", help="Tags CSV or A2D root (default: the tags the cam store records).")] = None,
    preset: Annotated[Preset, typer.Option(help="paper: Sec. 4.2 settings; cpu: a useful model on the synthetic data in minutes.")] = Preset("paper"),
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file of training options (names as in docs/train.md); the command line wins.")] = None,
    iterations: Annotated[Optional[int], _option("Training iterations.", "--iterations", min=1)] = None,
    batch_size: Annotated[Optional[int], _option("Frames per iteration (all processes together).", "--batch-size", min=1)] = None,
    learning_rate: Annotated[Optional[float], _option("Initial learning rate (poly decay).", "--learning-rate", min=0)] = None,
    crop: Annotated[Optional[int], _option("Random crop size.", "--crop", min=16)] = None,
    backbone: Annotated[Optional[Backbone], _option("Actor-branch backbone.", "--backbone")] = None,
    backbone_weights: Annotated[Optional[Path], _option("ImageNet weights for a ResNet backbone (torchvision state dict).", "--backbone-weights")] = None,
    output_stride: Annotated[Optional[int], _option("Backbone output stride (8, 16 or 32).", "--output-stride")] = None,
    motion: Annotated[Optional[Motion], _option("Motion encoder: flow (offline default), i3d (needs --motion-weights), none (ablation).", "--motion")] = None,
    motion_weights: Annotated[Optional[Path], _option("Kinetics-400 I3D-R50 checkpoint (pytorchvideo state dict) for --motion i3d.", "--motion-weights")] = None,
    motion_spatial: Annotated[Optional[bool], _option("Motion as a per-location map (default) or one vector per clip.", "--motion-spatial/--motion-vector")] = None,
    use_edge: Annotated[Optional[bool], _option("Edge-aware term (--no-edge: Table 3 ablation).", "--edge/--no-edge")] = None,
    use_tag: Annotated[Optional[bool], _option("Tag-aware term (--no-tag: ablation).", "--tag/--no-tag")] = None,
    use_unlabeled: Annotated[Optional[bool], _option("Train on unlabeled videos too (--no-unlabeled: ablation).", "--unlabeled/--no-unlabeled")] = None,
    labeled_fraction: Annotated[Optional[float], _option("Share of CAM-labeled frames kept labeled, the rest turned unlabeled (Table 5).", "--labeled-fraction")] = None,
    edge_concentration: Annotated[Optional[float], _option("k_e.", "--k-edge")] = None,
    cam_concentration: Annotated[Optional[float], _option("k_c.", "--k-cam")] = None,
    tag_concentration: Annotated[Optional[float], _option("k_t.", "--k-tag")] = None,
    edge_weight: Annotated[Optional[float], _option("a_e.", "--w-edge")] = None,
    cam_weight: Annotated[Optional[float], _option("a_c.", "--w-cam")] = None,
    tag_weight: Annotated[Optional[float], _option("a_t.", "--w-tag")] = None,
    workers: Annotated[Optional[int], _option("DataLoader worker processes.", "--workers", min=0)] = None,
    seed: Annotated[Optional[int], _option("Random seed.", "--seed")] = None,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    overwrite: Overwrite = False,
    resume: Resume = False,
) -> None:
    given = {key: value for key, value in locals().items() if value is not None}
    overrides: dict[str, Any] = tomllib.loads(config_file.read_text()) if config_file else {}
    for field in fields(TrainConfig):  # options named like TrainConfig fields override the preset
        if field.name in given:
            value = given[field.name]
            overrides[field.name] = value.value if isinstance(value, enum.Enum) else value
    config = make_config(preset.value, overrides)
    torch_device = resolve_device(device)
    world = distributed_from_env(torch_device)
    if config.batch_size % world.world:
        raise VscrError(f"--batch-size {config.batch_size} does not split over {world.world} processes")
    with _folder_lock(output, world.main):
        _prepare_folder(output, overwrite, resume, world.main)

        with open_training_inputs(edges, cam, sources, tags, config.labeled_fraction) as data:
            backbone_state = (
                weights.load_state_dict("efficientnet-lite0-imagenet")
                if config.backbone == "tf_efficientnet_lite0"
                else _required_weights(backbone_weights, "--backbone-weights", config.backbone)
            )
            motion_state = _required_weights(motion_weights, "--motion-weights", "--motion i3d") if config.motion == "i3d" else None
            with console.progress() as bar:
                task = bar.add_task("caching frames" + (" and optical flow" if config.motion == "flow" else ""), total=len(data.videos))
                cache = build_frame_cache(data, config, output, lambda: bar.advance(task)) if world.main else None
            if world.world > 1:
                import torch.distributed as dist

                dist.barrier()
                cache = cache or open_frame_cache(output, config)
            dtype = resolve_autocast(precision, torch_device)
            labeled = sum(int(v.labeled.sum()) for v in data.videos)
            total = sum(len(v.frame_index) for v in data.videos)
            console.log.info("%d frames (%d labeled) of %d videos; %s on %s (%s), %d process(es)", total, labeled, len(data.videos), config.backbone, torch_device, dtype or "fp32", world.world)
            record = {"inputs": {"edges": edges, "cam": cam, "sources": list(sources or data.edges.record.inputs.get("sources", []))}, "frame_height": data.height}
            with console.progress() as bar:
                task = bar.add_task("training", total=config.iterations)

                def report(log):
                    bar.update(task, completed=log.iteration, description=f"training  loss {log.total:.3f} (edge {log.edge:.2f} cam {log.cam:.2f} tag {log.tag:.2f} head {log.classifier:.2f})")

                train(data, cache, config, output, torch_device, dtype, backbone_state, motion_state, resume, world, report if world.main else None, record)
    console.log.info("model written to %s", output)


def _required_weights(path: Path | None, option: str, what: str):
    if path is None:
        raise VscrError(f"{what} needs {option} PATH (a local state dict: none ships on the package index)")
    return weights.load_local_state_dict(path)


def _folder_lock(folder: Path, main: bool) -> contextlib.AbstractContextManager:
    """The main process locks ``.NAME.lock`` beside the model folder: one training run writes it at a time."""
    if not main:
        return contextlib.nullcontext()
    folder.parent.mkdir(parents=True, exist_ok=True)
    return OutputLock(folder)


def _prepare_folder(folder: Path, overwrite: bool, resume: bool, main: bool) -> None:
    if folder.exists() and any(folder.iterdir()) and not (overwrite or resume):
        raise VscrError(f"{folder}: output folder is not empty (pass --overwrite to replace it or --resume to continue)")
    if main:
        if overwrite and not resume and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
