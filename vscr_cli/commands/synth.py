"""Write a synthetic actor-action dataset in the A2D Release layout (actors by appearance, actions by motion)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vscr_cli import console, labels
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.options import JsonFlag, Overwrite, Seed
from vscr_cli.reports import print_summary

NAME = "synth"


def command(
    output: Annotated[Path, typer.Argument(help="Folder to create (holds Release/ and tags.csv).")],
    videos: Annotated[int, typer.Option(min=1, help="Number of videos.")] = SynthConfig.videos,
    frames: Annotated[int, typer.Option(min=2, help="Frames per video.")] = SynthConfig.frames,
    height: Annotated[int, typer.Option(min=32, help="Frame height (even).")] = SynthConfig.height,
    width: Annotated[int, typer.Option(min=32, help="Frame width (even).")] = SynthConfig.width,
    annotated: Annotated[int, typer.Option(min=1, help="Annotated frames per video (A2D annotates a few).")] = SynthConfig.annotated,
    multi: Annotated[float, typer.Option(min=0, max=1, help="Fraction of videos with two actors or actions.")] = SynthConfig.multi_fraction,
    empty: Annotated[float, typer.Option(min=0, max=1, help="Fraction of videos with no actor.")] = SynthConfig.empty_fraction,
    test_fraction: Annotated[float, typer.Option(min=0, max=0.99, help="Fraction of videos in the test split.")] = SynthConfig.test_fraction,
    dense: Annotated[bool, typer.Option(help="Also write every frame's label map (Annotations/dense).")] = False,
    classes: Annotated[str, typer.Option(help="Actor-action classes to draw from, e.g. 'adult-running;dog-walking' or 17,78 (default: all 43).")] = "",
    scene_by_class: Annotated[bool, typer.Option("--scene-by-class", help="Each video's background texture is its (first) class's, so the scene predicts the class as in real footage (default: random: the scene says nothing).")] = False,
    seed: Seed = 0,
    overwrite: Overwrite = False,
    json_output: JsonFlag = False,
) -> None:
    config = SynthConfig(
        videos=videos,
        frames=frames,
        height=height,
        width=width,
        annotated=annotated,
        multi_fraction=multi,
        empty_fraction=empty,
        test_fraction=test_fraction,
        dense=dense,
        seed=seed,
        classes=_classes(classes),
        scene_by_class=scene_by_class,
    )
    with console.progress() as bar:
        task = bar.add_task("synthesising videos", total=videos)
        summary = synthesize(output, config, overwrite=overwrite, progress=lambda n: bar.advance(task, n))
    if json_output:
        console.stdout.print_json(json.dumps(summary.to_json()))
    else:
        print_summary(summary)


def _classes(text: str) -> tuple[int, ...]:
    try:
        return labels.parse_tags(text) or labels.VALID_IDS
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--classes") from error
