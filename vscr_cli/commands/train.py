"""Train the two-stream VSCR network on edges and cam stores under the unified contrastive objective."""

from __future__ import annotations

import contextlib
import enum
import shutil
import statistics
import tomllib
from pathlib import Path
from collections.abc import Iterator
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
from vscr_cli.core.models.motion import MOTION_ENCODERS
from vscr_cli.models import BACKBONES, DEFAULT_MODEL, MOTIONS
from vscr_cli.stages.train import (
    AUTO_PRESET,
    CHECKPOINT,
    PRESETS,
    TrainConfig,
    build_frame_cache,
    distributed_from_env,
    make_config,
    open_frame_cache,
    open_training_inputs,
    preset_for,
    train,
)
from vscr_cli.store import OutputLock, check_output, mark_output

NAME = "train"
MODEL = "model"  # the kind of output this command owns
Preset = enum.Enum("Preset", {name: name for name in (AUTO_PRESET, *PRESETS)}, type=str)
Backbone = enum.Enum("Backbone", {name: name for name in BACKBONES}, type=str)
Motion = enum.Enum("Motion", {name: name for name in MOTIONS}, type=str)
#: Steps measured (the first, which warms up, left out) before the run's duration is estimated.
ESTIMATE_AFTER = 4


def _option(help_text: str, *names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help_text, show_default=False, **kwargs)


def command(
    edges: Annotated[str, typer.Option("--edges", help="Edges store (vscr edges).")],
    cam: Annotated[str, typer.Option("--cam", help="Cam store (vscr cam) of the same videos and frames.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write (vscr predict reads model/ by default).")] = DEFAULT_MODEL,
    sources: Annotated[Optional[list[str]], typer.Argument(help="The videos the stores were made from (default: the sources the edges store records).", show_default=False)] = None,
    tags: Annotated[Optional[str], typer.Option("--tags", help="Tags CSV or A2D root (default: the tags the cam store records).")] = None,
    preset: Annotated[
        Preset, typer.Option(help="paper: Sec. 4.2 (ResNet-101 DeepLab + I3D, GPU); cpu: a useful model on the synthetic data in minutes; auto: paper on CUDA, cpu otherwise.")
    ] = Preset(AUTO_PRESET),
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file of training options (names as in docs/train.md); the command line wins.")] = None,
    iterations: Annotated[Optional[int], _option("Training iterations.", "--iterations", min=1)] = None,
    batch_size: Annotated[Optional[int], _option("Frames per iteration (all processes together).", "--batch-size", min=1)] = None,
    learning_rate: Annotated[Optional[float], _option("Initial learning rate (poly decay).", "--learning-rate", min=0)] = None,
    crop: Annotated[Optional[int], _option("Random crop size.", "--crop", min=16)] = None,
    backbone: Annotated[Optional[Backbone], _option("Actor-branch backbone.", "--backbone")] = None,
    backbone_weights: Annotated[Optional[Path], _option("Local ImageNet weights for the backbone (default: the cache, fetched once; see docs/weights.md).", "--backbone-weights")] = None,
    output_stride: Annotated[Optional[int], _option("Backbone output stride (8, 16 or 32).", "--output-stride")] = None,
    motion: Annotated[Optional[Motion], _option("Motion encoder: flow (no pretrained weights), i3d (Kinetics-400, the paper's), none (ablation).", "--motion")] = None,
    motion_weights: Annotated[Optional[Path], _option("Local Kinetics-400 I3D-R50 checkpoint for --motion i3d (default: torch.hub's cache, fetched once).", "--motion-weights")] = None,
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
    for name in TrainConfig.options():  # options named like the training options override the preset
        if name in given:
            value = given[name]
            overrides[name] = value.value if isinstance(value, enum.Enum) else value
    torch_device = resolve_device(device)
    preset_name = preset_for(torch_device) if preset.value == AUTO_PRESET else preset.value
    config = make_config(preset_name, overrides)
    motion_weights_name = MOTION_ENCODERS[config.motion].weights if config.motion in MOTION_ENCODERS else None
    if motion_weights is not None and motion_weights_name is None:
        raise typer.BadParameter(f"--motion {config.motion} takes no pretrained weights", param_hint="--motion-weights")
    world = distributed_from_env(torch_device)
    if world.main:  # before any work; the other processes follow the main one
        output = check_output(output, MODEL, overwrite, resume)
    if config.batch_size % world.world:
        raise VscrError(f"--batch-size {config.batch_size} does not split over {world.world} processes")
    with _folder_lock(output, world.main), open_training_inputs(edges, cam, sources, tags, config.labeled_fraction) as data:
        with _model_folder(output, overwrite, resume, world.main):
            backbone_state = weights.load_state_dict(config.architecture.weights, backbone_weights, option="--backbone-weights")
            motion_state = weights.load_state_dict(motion_weights_name, motion_weights, option="--motion-weights") if motion_weights_name else None
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
            console.log.info("preset %s%s: %d iterations of batch %d, %dx%d crops; writing %s/", preset_name, " (auto)" if preset.value == AUTO_PRESET else "", config.iterations, config.batch_size, config.crop, config.crop, output)
            record = {"inputs": {"edges": edges, "cam": cam, "sources": list(sources or data.edges.record.inputs.get("sources", []))}, "frame_height": data.height}
            with console.progress() as bar:
                task = bar.add_task("training", total=config.iterations)
                step_seconds: list[float] = []

                def report(log):
                    bar.update(task, completed=log.iteration, description=f"training  loss {log.total:.3f} (edge {log.edge:.2f} cam {log.cam:.2f} tag {log.tag:.2f} head {log.classifier:.2f})")
                    step_seconds.append(log.seconds)
                    if len(step_seconds) == ESTIMATE_AFTER + 1 and log.iteration < config.iterations:
                        left, per_step = config.iterations - log.iteration, statistics.median(step_seconds[1:])
                        console.log.info("about %s more for the remaining %d iterations (%.2f s per iteration measured)", console.duration(per_step * left), left, per_step)

                train(data, cache, config, output, torch_device, dtype, backbone_state, motion_state, resume, world, report if world.main else None, record)
    console.log.info("model written to %s/", output)


def _folder_lock(folder: Path, main: bool) -> contextlib.AbstractContextManager:
    """The main process locks ``.NAME.lock`` beside the model folder: one training run writes it at a time."""
    return OutputLock(folder) if main else contextlib.nullcontext()


@contextlib.contextmanager
def _model_folder(folder: Path, overwrite: bool, resume: bool, main: bool) -> Iterator[None]:
    """Make the model folder (replacing a vscr model folder with --overwrite, reusing it with
    --resume); a folder this run made is removed again if the run fails before its first checkpoint."""
    if not main:
        yield
        return
    check_output(folder, MODEL, overwrite, resume)  # again, under the lock
    if overwrite and not resume and folder.exists():
        shutil.rmtree(folder)
    created = not folder.exists()
    folder.mkdir(exist_ok=True)
    mark_output(folder, MODEL)
    try:
        yield
    except BaseException:
        if created and not (folder / CHECKPOINT).exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise
