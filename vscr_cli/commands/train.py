"""Train the two-stream VSCR network on edges and cam stores under the unified contrastive objective."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from vscr_cli.options import (
    Device,
    DeviceOption,
    Overwrite,
    Precision,
    PrecisionOption,
    Resume,
    check_inputs,
    resolve_autocast,
    resolve_device,
)
from vscr_cli.settings.model import BACKBONES, DEFAULT_MODEL, MODEL_KIND, MOTIONS
from vscr_cli.settings.train import AUTO_PRESET, PRESETS, TrainConfig
from vscr_cli.store import check_output

NAME = "train"
Preset = enum.Enum("Preset", {name: name for name in (AUTO_PRESET, *PRESETS)}, type=str)
Backbone = enum.Enum("Backbone", {name: name for name in BACKBONES}, type=str)
Motion = enum.Enum("Motion", {name: name for name in MOTIONS}, type=str)


def _option(help_text: str, *names: str, **kwargs: Any) -> Any:
    return typer.Option(*names, help=help_text, show_default=False, **kwargs)


def command(
    edges: Annotated[str, typer.Option("--edges", help="Edges store (vscr edges).")],
    cam: Annotated[str, typer.Option("--cam", help="Cam store (vscr cam) of the same videos and frames, or a pred store of them (vscr predict --tags with the same frames: a self-training round, every video labeled).")],
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
    crop_share: Annotated[Optional[float], _option("Train and predict frames taller than crop / share at that height, so a crop holds this share of the frame's height (cpu preset: 0.6; 0: at the stores' height).", "--crop-share", min=0.0, max=1.0)] = None,
    scale_min: Annotated[Optional[float], _option("Smallest random rescaling of a crop's window (the window is crop/s pixels a side; SPML: 0.5).", "--scale-min", min=0.05)] = None,
    scale_max: Annotated[Optional[float], _option("Largest random rescaling of a crop's window (SPML: 1.5).", "--scale-max", min=0.05)] = None,
    crop_max_class_share: Annotated[
        Optional[float], _option("Redraw a crop (up to 10 times) whose pseudo-labels are one class or more than this share one class (mmsegmentation's cat_max_ratio, e.g. 0.75; 1: off).", "--crop-max-class-share", min=0.01, max=1.0)
    ] = None,
    backbone: Annotated[Optional[Backbone], _option("Actor-branch backbone.", "--backbone")] = None,
    backbone_weights: Annotated[Optional[Path], _option("Local ImageNet weights for the backbone (default: the cache, fetched once; see docs/weights.md).", "--backbone-weights")] = None,
    output_stride: Annotated[Optional[int], _option("Backbone output stride (8, 16 or 32).", "--output-stride")] = None,
    motion: Annotated[Optional[Motion], _option("Motion encoder: flow (no pretrained weights), i3d (Kinetics-400, the paper's), none (ablation).", "--motion")] = None,
    motion_weights: Annotated[Optional[Path], _option("Local Kinetics-400 I3D-R50 checkpoint for --motion i3d (default: torch.hub's cache, fetched once).", "--motion-weights")] = None,
    motion_spatial: Annotated[Optional[bool], _option("Motion as a per-location map (default) or one vector per clip.", "--motion-spatial/--motion-vector")] = None,
    action_head: Annotated[Optional[bool], _option("Action head on the motion branch, trained on the action tags; tag-free prediction takes each actor's actions from it (default: on).", "--action-head/--no-action-head")] = None,
    use_edge: Annotated[Optional[bool], _option("Edge-aware term (--no-edge: Table 3 ablation).", "--edge/--no-edge")] = None,
    use_tag: Annotated[Optional[bool], _option("Tag-aware term (--no-tag: ablation).", "--tag/--no-tag")] = None,
    tag_memory: Annotated[Optional[bool], _option("The tag term also reads the memory bank's recent iterations, as SPML's co-occurrence term (default: off, measured worse on the synthetic set).", "--tag-memory/--no-tag-memory")] = None,
    use_unlabeled: Annotated[Optional[bool], _option("Train on unlabeled videos too (--no-unlabeled: ablation).", "--unlabeled/--no-unlabeled")] = None,
    labeled_fraction: Annotated[Optional[float], _option("Share of CAM-labeled frames kept labeled, the rest turned unlabeled (Table 5).", "--labeled-fraction")] = None,
    edge_concentration: Annotated[Optional[float], _option("k_e.", "--k-edge")] = None,
    cam_concentration: Annotated[Optional[float], _option("k_c.", "--k-cam")] = None,
    tag_concentration: Annotated[Optional[float], _option("k_t.", "--k-tag")] = None,
    edge_weight: Annotated[Optional[float], _option("a_e.", "--w-edge")] = None,
    cam_weight: Annotated[Optional[float], _option("a_c.", "--w-cam")] = None,
    tag_weight: Annotated[Optional[float], _option("a_t.", "--w-tag")] = None,
    action_weight: Annotated[Optional[float], _option("Weight of the action head's term.", "--w-action", min=0)] = None,
    workers: Annotated[Optional[int], _option("DataLoader worker processes.", "--workers", min=0)] = None,
    seed: Annotated[Optional[int], _option("Random seed.", "--seed")] = None,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    overwrite: Overwrite = False,
    resume: Resume = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard/--no-tensorboard", help="Write TensorBoard event files (curves and pictures) into the model folder's tensorboard/.")] = True,
) -> None:
    given = {key: value for key, value in locals().items() if value is not None}
    overrides: dict[str, Any] = {}
    for name in TrainConfig.options():  # options named like the training options override the file's and the preset's
        if name in given:
            value = given[name]
            overrides[name] = value.value if isinstance(value, enum.Enum) else value
    check_output(output, MODEL_KIND, overwrite, resume)
    check_inputs(sources, [edges, cam], tags, config=config_file)
    from vscr_cli.stages import train as stage  # torch and the network only once the refusals are made

    torch_device = resolve_device(device)
    stage.run(
        edges, cam, torch_device, resolve_autocast(precision, torch_device), output, sources, tags, preset.value, overrides,
        backbone_weights, motion_weights, overwrite, resume, config_file, tensorboard,
    )
