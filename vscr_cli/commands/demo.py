"""The whole pipeline on a freshly synthesised dataset: synth, edges, cam, train, predict, align, score, show."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vscr_cli import console
from vscr_cli.options import Overwrite, Seed, TagVotes
from vscr_cli.settings.demo import DEMO, SIZES, Size
from vscr_cli.settings.predict import DEFAULT_CRF, DEFAULT_TAG_VOTES
from vscr_cli.store import check_output

NAME = "demo"
MEDIUM = SIZES[Size.medium]


def command(
    work: Annotated[Path, typer.Argument(help="Working folder for the dataset, stores, model and overlays (its parent must exist).")] = Path("vscr-demo"),
    size: Annotated[Size, typer.Option(help=f"tiny: seconds (a smoke run); small: minutes on 2 cores; medium: {MEDIUM.videos} videos, {MEDIUM.iterations} iterations (45-60 minutes on 2 cores).")] = Size.small,
    overlays: Annotated[int, typer.Option(min=0, help="Test videos to render as side-by-side PNG overlays (the first also as MP4).")] = 3,
    seed: Seed = 0,
    crf: Annotated[bool, typer.Option("--crf/--no-crf", help="Sharpen the predictions with the dense CRF (vscr predict --crf/--no-crf).")] = DEFAULT_CRF,
    tag_votes: Annotated[
        TagVotes, typer.Option("--tag-votes", help="Rows given tags: a tag holds its own class's probability (class), or also that of its actor's other classes (actor); vscr predict --tag-votes.")
    ] = TagVotes(DEFAULT_TAG_VOTES),
    action_head: Annotated[
        bool, typer.Option("--action-head/--no-action-head", help="Train the network with the action head (vscr train --action-head); without it the test rows decide by the pooled class probabilities.")
    ] = True,
    overwrite: Overwrite = False,
) -> None:
    check_output(work, DEMO, overwrite, resumable=False)
    from vscr_cli.pipeline import run_demo  # every stage (torch, the models) only once the refusal is made

    table, record = run_demo(work, size, overlays, seed, overwrite, crf, tag_votes.value, action_head)
    console.stdout.print(table)
    console.stdout.print(f"{record['total_seconds']:.0f} s in all; scores, timings and overlays in {work}/ (demo.json, overlays/)", highlight=False)
    console.stdout.print(f"report: {record['report']} (open it in a browser; training curves: tensorboard --logdir {work})", highlight=False)
