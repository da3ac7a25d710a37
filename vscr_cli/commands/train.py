"""Train the two-stream VSCR network on edges and cam stores under the unified contrastive objective.

Every setting lives in one tree (:class:`vscr_cli.settings.train.TrainConfig`); a run's is the
preset's, then ``--config FILE``'s, then ``--set key.sub=value``'s, then the flags below (each a
name for one setting of the tree). ``--print-config`` prints the resolved tree as TOML and stops.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from vscr_cli.errors import VscrError
from vscr_cli.core.models.architectures import describe
from vscr_cli.options import (
    CamStore,
    EdgesStore,
    TrainingSources,
    TrainingTags,
    Device,
    DeviceOption,
    Overwrite,
    Precision,
    PrecisionOption,
    Resume,
    check_inputs,
    runtime,
)
from vscr_cli.settings.model import BACKBONES, DEFAULT_MODEL, MODEL_KIND, MOTIONS
from vscr_cli.settings.train import AUTO_PRESET, preset_defaults, presets
from vscr_cli.settings.run import RunOptions
from vscr_cli.store import check_output

NAME = "train"
Preset = enum.Enum("Preset", {name: name for name in (AUTO_PRESET, *presets())}, type=str)
Backbone = enum.Enum("Backbone", {name: name for name in BACKBONES}, type=str)
Motion = enum.Enum("Motion", {name: name for name in MOTIONS}, type=str)


def _setting(key: str, help_text: str, *names: str, **kwargs: Any) -> Any:
    """A flag for the setting ``key`` of the tree, its default shown as the presets give it."""
    return typer.Option(*names, help=f"{help_text} (setting: {key})  " + escape(f"[default: {preset_defaults(key)}]"), show_default=False, **kwargs)


def command(
    edges: EdgesStore = None,
    cam: CamStore = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Model folder to write (vscr predict reads model/ by default).")] = DEFAULT_MODEL,
    sources: TrainingSources = None,
    tags: TrainingTags = None,
    preset: Annotated[
        Preset, typer.Option(help="paper: the paper's Stage II exactly (ResNet-101 DeepLab + I3D vector, Eq. 4 only; GPU); gpu: the paper's networks with the toolkit's additions; cpu: a useful model in minutes on 2 cores; paper-cpu: the paper's choices on the cpu networks and sizes; auto: gpu on CUDA, cpu otherwise. Files: vscr_cli/settings/presets/train/.")
    ] = Preset(AUTO_PRESET),
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file of settings laid over the preset (the tree --print-config prints).")] = None,
    settings: Annotated[Optional[list[str]], typer.Option("--set", help="KEY=VALUE laid over the preset and --config, e.g. --set objective.edge_weight=0.5 (repeatable).", show_default=False)] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the resolved settings as TOML (a --config file) and exit.")] = False,
    iterations: Annotated[Optional[int], _setting("iterations", "Training iterations: exactly these, unless --crops-per-frame is given too (then the least).", "--iterations", min=1)] = None,
    crops_per_frame: Annotated[
        Optional[float], _setting("crops_per_frame", "Training length per training frame: iterations raised to this many crops a frame (crops x frames / batch size, in whole checkpoint intervals); 0: --iterations as given.", "--crops-per-frame", min=0.0)
    ] = None,
    batch_size: Annotated[Optional[int], _setting("batch_size", "Frames per iteration (all processes together).", "--batch-size", min=1)] = None,
    learning_rate: Annotated[Optional[float], _setting("learning_rate", "Initial learning rate (poly decay).", "--learning-rate", min=0)] = None,
    crop: Annotated[Optional[int], _setting("crop", "Random crop size.", "--crop", min=16)] = None,
    crop_share: Annotated[Optional[float], _setting("crop_share", "Train and predict frames taller than crop / share at that height, so a crop holds this share of the frame's height (0: at the stores' height).", "--crop-share", min=0.0, max=1.0)] = None,
    scale_min: Annotated[Optional[float], _setting("scale_min", "Smallest random rescaling of a crop's window (the window is crop/s pixels a side; SPML: 0.5).", "--scale-min", min=0.05)] = None,
    scale_max: Annotated[Optional[float], _setting("scale_max", "Largest random rescaling of a crop's window (SPML: 1.5).", "--scale-max", min=0.05)] = None,
    crop_max_class_share: Annotated[
        Optional[float], _setting("crop_max_class_share", "Redraw a crop (up to 10 times) whose pseudo-labels are one class or more than this share one class (mmsegmentation's cat_max_ratio; 1: off).", "--crop-max-class-share", min=0.01, max=1.0)
    ] = None,
    backbone: Annotated[Optional[Backbone], _setting("backbone", f"Actor-branch backbone ({describe('backbone')}).", "--backbone")] = None,
    backbone_weights: Annotated[Optional[Path], typer.Option("--backbone-weights", help="Local ImageNet weights for the backbone (default: the cache, fetched once; see docs/weights.md).", show_default=False)] = None,
    output_stride: Annotated[Optional[int], _setting("output_stride", "Backbone output stride (8, 16 or 32).", "--output-stride")] = None,
    motion: Annotated[Optional[Motion], _setting("motion", "Motion encoder: flow (no pretrained weights), i3d (Kinetics-400, the paper's), none (ablation).", "--motion")] = None,
    motion_weights: Annotated[Optional[Path], typer.Option("--motion-weights", help="Local Kinetics-400 I3D-R50 checkpoint for --motion i3d (default: torch.hub's cache, fetched once).", show_default=False)] = None,
    motion_spatial: Annotated[Optional[bool], _setting("motion_spatial", "Motion as a per-location map or one vector per clip.", "--motion-spatial/--motion-vector")] = None,
    action_head: Annotated[Optional[bool], _setting("action_head", "Action head on the motion branch, trained on the action tags; tag-free prediction takes each actor's actions from it.", "--action-head/--no-action-head")] = None,
    use_edge: Annotated[Optional[bool], _setting("objective.use_edge", "Edge-aware term of Eq. 4 (--no-edge-term: Table 3 ablation; --edge/--no-edge the same).", "--edge-term/--no-edge-term", "--edge/--no-edge")] = None,
    use_tag: Annotated[Optional[bool], _setting("objective.use_tag", "Tag-aware term of Eq. 4 (--no-tag-term: ablation; --tag/--no-tag the same).", "--tag-term/--no-tag-term", "--tag/--no-tag")] = None,
    tag_memory: Annotated[Optional[bool], _setting("tag_memory", "The tag term also reads the memory bank's recent iterations, as SPML's co-occurrence term (off: measured worse on the synthetic set).", "--tag-memory/--no-tag-memory")] = None,
    use_unlabeled: Annotated[Optional[bool], _setting("objective.use_unlabeled", "Train on unlabeled videos too (--no-unlabeled: ablation).", "--unlabeled/--no-unlabeled")] = None,
    labeled_fraction: Annotated[Optional[float], _setting("labeled_fraction", "Share of CAM-labeled frames kept labeled, the rest turned unlabeled (Table 5).", "--labeled-fraction")] = None,
    edge_concentration: Annotated[Optional[float], _setting("objective.edge_concentration", "Concentration k_e of the edge term (Eq. 4).", "--k-edge")] = None,
    cam_concentration: Annotated[Optional[float], _setting("objective.cam_concentration", "Concentration k_c of the CAM term.", "--k-cam")] = None,
    tag_concentration: Annotated[Optional[float], _setting("objective.tag_concentration", "Concentration k_t of the tag term.", "--k-tag")] = None,
    edge_weight: Annotated[Optional[float], _setting("objective.edge_weight", "Weight a_e of the edge term.", "--w-edge")] = None,
    cam_weight: Annotated[Optional[float], _setting("objective.cam_weight", "Weight a_c of the CAM term.", "--w-cam")] = None,
    tag_weight: Annotated[Optional[float], _setting("objective.tag_weight", "Weight a_t of the tag term.", "--w-tag")] = None,
    action_weight: Annotated[Optional[float], _setting("action_weight", "Weight of the action head's term.", "--w-action", min=0)] = None,
    head_gradient: Annotated[
        Optional[float], _setting("head_gradient", "Share of the segmentation head's cross-entropy gradient that reaches the embedding (0: detached, SPML's and the paper presets').", "--head-gradient", min=0.0, max=1.0)
    ] = None,
    workers: Annotated[Optional[int], _setting("workers", "DataLoader worker processes.", "--workers", min=0)] = None,
    seed: Annotated[Optional[int], _setting("seed", "Random seed.", "--seed")] = None,
    precision: PrecisionOption = Precision.auto,
    device: DeviceOption = Device.auto,
    overwrite: Overwrite = False,
    resume: Resume = False,
    tensorboard: Annotated[bool, typer.Option("--tensorboard/--no-tensorboard", help="Write TensorBoard event files (curves and pictures) into the model folder's tensorboard/.")] = True,
) -> None:
    flags = {
        "iterations": iterations, "crops_per_frame": crops_per_frame, "batch_size": batch_size, "learning_rate": learning_rate, "crop": crop, "crop_share": crop_share,
        "scale_min": scale_min, "scale_max": scale_max, "crop_max_class_share": crop_max_class_share,
        "backbone": backbone.value if backbone else None, "output_stride": output_stride, "motion": motion.value if motion else None,
        "motion_spatial": motion_spatial, "action_head": action_head, "tag_memory": tag_memory, "labeled_fraction": labeled_fraction,
        "action_weight": action_weight, "head_gradient": head_gradient, "workers": workers, "seed": seed,
        "objective.use_edge": use_edge, "objective.use_tag": use_tag, "objective.use_unlabeled": use_unlabeled,
        "objective.edge_concentration": edge_concentration, "objective.cam_concentration": cam_concentration,
        "objective.tag_concentration": tag_concentration, "objective.edge_weight": edge_weight,
        "objective.cam_weight": cam_weight, "objective.tag_weight": tag_weight,
    }  # fmt: skip
    given = {key: value for key, value in flags.items() if value is not None}
    if not print_config:
        if edges is None or cam is None:
            raise VscrError("missing --edges and --cam: the stores to train on (--print-config needs neither)")
        check_output(output, MODEL_KIND, overwrite, resume)
        check_inputs(sources, [edges, cam], tags, config=config_file)
    from vscr_cli.stages import train as stage  # torch and the network only once the refusals are made

    computing = runtime(device, precision, RunOptions(overwrite=overwrite, resume=resume))
    preset_name, config = stage.resolve_config(preset.value, computing.device, config_file, settings or (), given)
    if print_config:
        sys.stdout.write(config.to_toml(f"vscr train --preset {preset_name}: the resolved settings"))
        return
    stage.run(
        edges, cam, computing, output, sources, tags, config, backbone_weights, motion_weights, tensorboard,
        preset_name + (" (auto)" if preset.value == AUTO_PRESET else ""),
    )
