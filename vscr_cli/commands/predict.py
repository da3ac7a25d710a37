"""Segment videos with a trained model: per frame A2D actor-action label maps, into a pred store."""

from __future__ import annotations

import enum
import sys
from typing import Annotated, Optional

import typer

from vscr_cli.options import BatchSize, ConfigurableSources, ModelFolder, PerVideo, TagVotes, check_inputs, comma_separated, per_video_options, preset_values, required_sources
from vscr_cli.settings import predict as settings
from vscr_cli.settings.predict import PredictParams
from vscr_cli.settings.records import preset_names, toml_text

NAME = "predict"
Decode = enum.Enum("Decode", {name: name for name in settings.DECODES}, type=str)
Readout = enum.Enum("Readout", {name: name for name in settings.READOUTS}, type=str)
VideoDecision = enum.Enum("VideoDecision", {name: name for name in settings.VIDEO_DECISIONS}, type=str)
Decision = enum.Enum("Decision", {name: name for name in settings.DECISIONS}, type=str)
Preset = enum.Enum("Preset", {name: name for name in preset_names(NAME)}, type=str)
#: The option behind each setting a preset may hold.
FLAGS = {name: name for name in ("decode", "decision", "crf", "crf_height", "tag_votes", "readout", "scale", "multi_scale", "flip", "temporal", "video_decision", "prob")}


@per_video_options
def command(
    context: typer.Context,
    video: PerVideo,
    sources: ConfigurableSources = None,
    model: ModelFolder = None,
    prob: Annotated[bool, typer.Option("--prob", help="Also store the class probabilities (T, 44, H, W) float16 (for vscr align --use-prob).")] = False,
    height: Annotated[int | None, typer.Option("--height", min=8, help="Height of the labels written (default: the height the model was trained at).")] = None,
    scale: Annotated[float, typer.Option("--scale", min=settings.MIN_SCALE, help="Run the network on the frames at this many times --height, or times the model's working height where it trained on fewer rows (2 can help where actors are small in the frame).")] = settings.DEFAULT_SCALE,
    multi_scale: Annotated[
        str,
        typer.Option("--multi-scale", metavar="R,R,...", help="Also run the network at these multiples of --scale and average the class probabilities (SPML's multi-scale inference uses 0.5,0.75,1,1.25,1.5; each scale adds its share of the network's time). 1: one pass."),
    ] = ",".join(f"{ratio:g}" for ratio in settings.DEFAULT_MULTI_SCALE),
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Average the network's outputs on each frame with those on its mirror image (SPML's flipped inference; twice the network's time).")] = settings.DEFAULT_FLIP,
    temporal: Annotated[int, typer.Option("--temporal", min=0, help="Fuse each frame's class probabilities with those of this many frames on each side, warped along the optical flow (0: each frame alone).")] = settings.DEFAULT_TEMPORAL,
    tags: Annotated[str | None, typer.Option("--tags", help="Tags CSV or A2D root: decode each video among background and its tags.")] = None,
    decode: Annotated[Decode, typer.Option("--decode", help="Without --tags: 'video' decides each video's classes from all its frames first, 'frame' decodes every frame among all classes.")] = Decode("video"),
    video_decision: Annotated[
        VideoDecision,
        typer.Option("--video-decision", help="With --decode video: two-stream takes the actors from the pooled class probabilities and each actor's actions from the model's action head; pooled takes the classes the pooled probabilities show (models without an action head)."),
    ] = VideoDecision(settings.DEFAULT_VIDEO_DECISION),
    readout: Annotated[Readout, typer.Option("--readout", help="softmax: the network's head; knn: votes of the model's prototype bank (a model from vscr refine).")] = Readout("softmax"),
    tag_votes: Annotated[
        TagVotes,
        typer.Option("--tag-votes", help="With --tags: a tag holds its own class's probability (class), or also that of every other class of its actor (actor)."),
    ] = TagVotes(settings.DEFAULT_TAG_VOTES),
    crf: Annotated[bool, typer.Option("--crf/--no-crf", help="Sharpen the class maps with a dense CRF on the frame's colours (DeepLab's and SPML's settings; --no-crf: the paper's inference).")] = settings.DEFAULT_CRF,
    crf_height: Annotated[int, typer.Option("--crf-height", min=0, help="Run the dense CRF at this many rows where the labels have more, its marginals upsampled (the CRF's time grows with the pixels); 0: at the labels' height.")] = settings.DEFAULT_CRF_HEIGHT,
    decision: Annotated[Decision, typer.Option("--decision", help="A pixel's class: foreground where the actor-action classes together outweigh background, then the likeliest of them; argmax: the likeliest class (the paper's softmax).")] = Decision(settings.DEFAULT_DECISION),
    preset: Annotated[Optional[Preset], typer.Option("--preset", help="paper: the paper's inference (--decode frame --decision argmax --no-crf; with --tags, --tag-votes class); options given on the command line win. Files: vscr_cli/settings/presets/predict/.", show_default=False)] = None,
    batch_size: BatchSize = 4,
    print_config: Annotated[bool, typer.Option("--print-config", help="Print the decoding settings these options resolve to as TOML and exit.")] = False,
) -> None:
    chosen = {
        "decode": decode.value, "prob": prob, "readout": readout.value, "scale": scale, "multi_scale": _ratios(multi_scale), "flip": flip, "temporal": temporal, "crf": crf, "tag_votes": tag_votes.value,
        "video_decision": video_decision.value, "decision": decision.value, "crf_height": crf_height,
    }  # fmt: skip
    chosen.update(preset_values(context, preset.value if preset else None, NAME, FLAGS))
    params = PredictParams(**{**chosen, "decode": "tags" if tags else chosen["decode"]})
    params.validate()
    if print_config:
        sys.stdout.write(toml_text(params.settings(), "vscr predict: the resolved settings"))
        return
    sources = required_sources(sources)
    target = video.target(pipe="| vscr align, | vscr score")
    model = model or settings.default_model()
    check_inputs(sources, tags=tags, model=model)
    from vscr_cli.stages import predict as stage  # torch and the network only once the refusals are made

    stage.run(sources, target, model, video.runtime(), video.selection(height), video.split.value, tags, params, batch_size)


def _ratios(text: str) -> tuple[float, ...]:
    """'0.75,1,1.25' -> (0.75, 1.0, 1.25); the values are checked with the other settings (:meth:`PredictParams.validate`)."""
    try:
        return comma_separated(text, float)
    except ValueError:
        raise typer.BadParameter(f"expected comma-separated numbers (e.g. 0.75,1,1.25), got {text!r}", param_hint="--multi-scale") from None
