"""Actor activation maps (Grad-CAM++ of a fine-tuned classifier) and SLIC pseudo-labels, into a cam store."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from vscr_cli.core.models.architectures import describe
from vscr_cli.options import BatchSize, ConfigurableSources, PerVideo, Tags, Weights, check_inputs, comma_separated, per_video_options, preset_values, required_sources
from vscr_cli.settings import cam as settings
from vscr_cli.settings.cam import CamParams, ClassifierConfig
from vscr_cli.settings.predict import DEFAULT_CRF_HEIGHT, check_crf_height
from vscr_cli.settings.records import preset_names, toml_text

NAME = "cam"
Arch = enum.Enum("Arch", {name: name for name in settings.ARCHITECTURES}, type=str)
NonePolicy = enum.Enum("NonePolicy", {name: name for name in settings.NONE_POLICIES}, type=str)
Disagreement = enum.Enum("Disagreement", {name: name for name in settings.DISAGREEMENT_CUES}, type=str)
Preset = enum.Enum("Preset", {name: name for name in preset_names(NAME)}, type=str)
#: The option behind each setting a preset may hold.
FLAGS = {
    **{f"classifier.{key}": flag for key, flag in (("arch", "arch"), ("epochs", "epochs"), ("frames_per_video", "fit_frames"), ("input_height", "input_height"), ("seed", "seed"))},
    **{f"pseudo_labels.{key}": key for key in ("threshold", "cam_heights", "cam_pad", "cam_flip", "motion_weight", "motion_gap", "slic_segments", "slic_height", "doubt_band", "ignore_disagreement", "crf", "crf_height")},
    "pseudo_labels.none_policy": "none_tags",
}


@per_video_options
def command(
    context: typer.Context,
    video: PerVideo,
    sources: ConfigurableSources = None,
    tags: Tags = None,
    classifier: Annotated[
        Optional[Path],
        typer.Option(help="Folder of a fitted classifier: reused when it holds one fitted with the --arch, --epochs, --fit-frames, --input-height and --seed given (others: refused, refitted with --overwrite), else the new one is saved there (default: the output's name with .classifier for its store suffix)."),
    ] = None,
    arch: Annotated[Optional[Arch], typer.Option(help=f"Classifier ({describe('classifier')}); weights: docs/weights.md.", show_default=ClassifierConfig.arch)] = None,
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Fine-tuning epochs.", show_default=str(ClassifierConfig.epochs))] = None,
    fit_frames: Annotated[Optional[int], typer.Option(min=2, help="Frames per single-tag video used to fine-tune.", show_default=str(ClassifierConfig.frames_per_video))] = None,
    input_height: Annotated[Optional[int], typer.Option(min=32, help="Frame height the classifier sees.", show_default=str(ClassifierConfig.input_height))] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="A superpixel whose mean evidence reaches this takes the tag (with --fixed-threshold).")] = settings.DEFAULT_THRESHOLD,
    video_threshold: Annotated[bool, typer.Option("--video-threshold/--fixed-threshold", help="Per-video Otsu threshold of the evidence, or --threshold for every video.")] = settings.DEFAULT_VIDEO_THRESHOLD,
    cam_heights: Annotated[str, typer.Option(help="Frame heights at which activation maps are taken and averaged (comma-separated).")] = ",".join(map(str, settings.DEFAULT_CAM_HEIGHTS)),
    cam_pad: Annotated[float, typer.Option(min=0.0, max=0.45, help="Reflect each classifier input by this fraction of its height on every side before the map is taken, and crop the map back.")] = settings.DEFAULT_CAM_PAD,
    cam_flip: Annotated[bool, typer.Option("--cam-flip/--no-cam-flip", help="Average in the maps of the mirrored frames.")] = settings.DEFAULT_CAM_FLIP,
    motion_weight: Annotated[
        str,
        typer.Option("--motion-evidence", "--motion-weight", help="Weight of camera-compensated motion in the evidence, 0-1 (0: activation maps only, the paper's), or auto: per frame, each cue weighted by how little of the frame it claims (docs/decisions/0022, 0038)."),
    ] = "auto" if settings.DEFAULT_MOTION_WEIGHT is None else str(settings.DEFAULT_MOTION_WEIGHT),
    motion_gap: Annotated[int, typer.Option(min=1, help="Frames between a frame and the one its flow goes to.")] = settings.DEFAULT_MOTION_GAP,
    slic_segments: Annotated[int, typer.Option(min=2, help="SLIC superpixels per frame.")] = CamParams.slic_segments,
    slic_height: Annotated[int, typer.Option("--slic-height", min=0, help="Run SLIC on the frames shrunk to this many rows where they have more, the superpixels resized back; 0: at the frames' height.")] = settings.DEFAULT_SLIC_HEIGHT,
    doubt_band: Annotated[float, typer.Option(min=0.0, max=1.0, help="Leave superpixels whose mean evidence is this close below the threshold unlabelled (ignored in training) instead of background (0: off).")] = settings.DEFAULT_DOUBT_BAND,
    ignore_disagreement: Annotated[
        Disagreement,
        typer.Option(help="Leave a superpixel the mixed evidence calls background unlabelled (ignored in training) where one cue alone reaches the threshold: class-map (a crowd of the actor's class), any (the motion too: a moving background), off."),
    ] = Disagreement(settings.DEFAULT_IGNORE_DISAGREEMENT),
    crf: Annotated[bool, typer.Option("--crf/--no-crf", help="Sharpen the pseudo-labels with the dense CRF of vscr predict (its unary from the pseudo-label).")] = settings.DEFAULT_CAM_CRF,
    crf_height: Annotated[int, typer.Option("--crf-height", min=0, help="Run --crf's CRF at this many rows where the frames have more, its marginals upsampled, as vscr predict's; 0: at the frames' height.")] = DEFAULT_CRF_HEIGHT,
    none_tags: Annotated[NonePolicy, typer.Option(help="Single '<actor>-none' videos: labeled (CAMs of the actor) or unlabeled (the paper's rule: no CAM, D_u).")] = NonePolicy(settings.DEFAULT_NONE_POLICY),
    batch_size: BatchSize = 1,
    weights_file: Weights = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed of the fine-tuning (runs with the same seed give the same classifier).", show_default=str(ClassifierConfig.seed))] = None,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the classifier's and the pseudo-labels' settings these options resolve to as TOML and exit.")] = False,
    preset: Annotated[Optional[Preset], typer.Option("--preset", help="paper: the paper's Stage I (ResNet-50, Grad-CAM++ at 224, SLIC at 0.5, no motion evidence or CRF, '-none' videos unlabeled); options given on the command line win. Files: vscr_cli/settings/presets/cam/.", show_default=False)] = None,
) -> None:
    pseudo = {
        "threshold": threshold, "cam_heights": _heights(cam_heights), "cam_pad": cam_pad, "cam_flip": cam_flip,
        "motion_weight": _motion_weight(motion_weight), "motion_gap": motion_gap, "slic_segments": slic_segments, "slic_height": slic_height,
        "none_policy": none_tags.value, "doubt_band": doubt_band, "ignore_disagreement": ignore_disagreement.value, "crf": crf, "crf_height": crf_height,
    }  # fmt: skip
    fitting = {"arch": arch.value if arch else None, "epochs": epochs, "frames_per_video": fit_frames, "input_height": input_height, "seed": seed}
    requested = {name: value for name, value in fitting.items() if value is not None}
    for key, value in preset_values(context, preset.value if preset else None, NAME, FLAGS).items():
        table, name = key.split(".", 1)
        (requested if table == "classifier" else pseudo)[name] = value
    params = CamParams(**{**pseudo, "threshold": None if video_threshold else pseudo["threshold"]})
    check_crf_height(params.crf_height)
    if print_config:
        tree = {"classifier": ClassifierConfig(**requested).settings(), "pseudo_labels": params.settings()}
        sys.stdout.write(toml_text(tree, "vscr cam: the resolved settings (a reused classifier keeps its own)"))
        return
    sources = required_sources(sources)
    target = video.target()
    check_inputs(sources, tags=tags)
    tags = tags or _root_tags(sources)
    from vscr_cli.stages import cam as stage  # torch and the classifier only once the refusals are made

    stage.run(sources, target, tags, video.runtime(), params, ClassifierConfig(**requested), classifier, video.selection(), video.split.value, batch_size, weights_file, tuple(requested))


def _root_tags(sources: list[str]) -> str:
    """The one A2D root among ``sources``, whose annotations give the tags when --tags is not given."""
    from vscr_cli.datasets.a2d import find_release_root

    if len(sources) == 1 and find_release_root(Path(sources[0])) is not None:
        return sources[0]
    raise typer.BadParameter("needed unless the one source is an A2D Release root", param_hint="--tags")


def _motion_weight(text: str) -> float | None:
    """``--motion-evidence``: a weight in [0, 1], or ``auto`` (None)."""
    if text.strip().lower() == "auto":
        return None
    try:
        weight = float(text)
    except ValueError:
        weight = -1.0
    if not 0 <= weight <= 1:
        raise typer.BadParameter(f"expected a weight in [0, 1] or auto, got {text!r}", param_hint="--motion-evidence")
    return weight


def _heights(text: str) -> tuple[int, ...]:
    try:
        heights = comma_separated(text, int)
    except ValueError:
        heights = ()
    if not heights or min(heights) < 32:
        raise typer.BadParameter(f"expected comma-separated heights of at least 32 pixels, got {text!r}", param_hint="--cam-heights")
    return heights
