"""The whole pipeline on a freshly synthesised dataset: synth, edges, cam, train, predict, align, score, show."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vscr_cli import console
from vscr_cli.errors import VscrError
from vscr_cli.options import Overwrite, Seed
from vscr_cli.store import check_output, mark_output, open_store

NAME = "demo"
DEMO = "demo"  # the kind of output this command owns: its working folder

#: Actor-action classes of the demo: adults and dogs, told apart by appearance, jumping or running, by motion.
DEMO_CLASSES = "15,17,75,77"


@dataclass(frozen=True)
class DemoSize:
    """How big the demo is: the synthetic dataset, the frames training uses and the training length."""

    videos: int
    frames: int
    annotated: int  # ground-truth frames per video (scored, as in A2D)
    height: int
    width: int
    every: int  # training uses every Nth frame of the train split
    iterations: int
    crop: int
    fit_frames: int
    epochs: int


class Size(str, Enum):
    tiny = "tiny"
    small = "small"
    medium = "medium"


SIZES = {
    Size.tiny: DemoSize(videos=6, frames=6, annotated=2, height=64, width=96, every=1, iterations=6, crop=32, fit_frames=2, epochs=1),  # a smoke run (tests)
    Size.small: DemoSize(videos=32, frames=16, annotated=4, height=120, width=160, every=2, iterations=600, crop=96, fit_frames=8, epochs=3),  # the default
    Size.medium: DemoSize(videos=64, frames=24, annotated=4, height=120, width=160, every=2, iterations=1500, crop=96, fit_frames=8, epochs=3),
}


@dataclass(frozen=True)
class Stage:
    title: str
    argv: list[str]


def demo_stages(work: Path, size: DemoSize, seed: int, overwrite: bool) -> list[Stage]:
    """The subcommands the demo runs, in order: training on the train split, scoring its frames and the test split."""
    synth, model, classifier = work / "synth", work / "model", work / "cam.classifier"
    tags = synth / "tags.csv"
    replace = ["--overwrite"] if overwrite else []
    return [
        Stage("synthesise a dataset", ["synth", synth, "--videos", size.videos, "--frames", size.frames, "--annotated", size.annotated, "--height", size.height, "--width", size.width, "--classes", DEMO_CLASSES, "--seed", seed, *replace]),
        Stage("edges of the train split", ["edges", synth, "--split", "train", "--every", size.every, "-o", work / "edges.zarr", *replace]),
        Stage("CAM pseudo-labels of the train split", ["cam", synth, "--split", "train", "--every", size.every, "--tags", tags, "--fit-frames", size.fit_frames, "--epochs", size.epochs, "--classifier", classifier, "--seed", seed, "-o", work / "cam.zarr", *replace]),
        Stage("CAM pseudo-labels of the test split (the baseline, given the tags)", ["cam", synth, "--split", "test", "--annotated-only", "--tags", tags, "--classifier", classifier, "-o", work / "cam-test.zarr", *replace]),
        Stage("train the VSCR network", ["train", "--edges", work / "edges.zarr", "--cam", work / "cam.zarr", "--preset", "cpu", "--iterations", size.iterations, "--crop", size.crop, "--seed", seed, "-o", model, *replace]),
        Stage("predict the training frames (their tags given, as to CAM)", ["predict", synth, "--split", "train", "--every", size.every, "--tags", tags, "-m", model, "-o", work / "pred-train.zarr", *replace]),
        Stage("predict the test split (tags given)", ["predict", synth, "--split", "test", "--annotated-only", "--tags", tags, "-m", model, "-o", work / "pred-tags.zarr", *replace]),
        Stage("predict the test split (no tags)", ["predict", synth, "--split", "test", "-m", model, "-o", work / "pred.zarr", *replace]),
        Stage("align predictions over time", ["align", work / "pred.zarr", "-o", work / "aligned.zarr", *replace]),
        *(
            Stage(f"score {name}", ["score", work / store, "--gt", synth, "--json", work / f"score-{name}.json", *(["--predicted-only"] if name.endswith("train") else [])])
            for name, store, _ in RESULT_ROWS
        ),
    ]


#: Rows of the final table: (score file, store scored, what it is). The train rows score the annotated
#: frames among the training frames (--predicted-only): the network against the pseudo-labels it learnt.
RESULT_ROWS = (
    ("cam-train", "cam.zarr", "CAM (train)"),
    ("pred-train", "pred-train.zarr", "VSCR (train)"),
    ("cam", "cam-test.zarr", "CAM (test, tags given)"),
    ("pred-tags", "pred-tags.zarr", "VSCR (test, tags given)"),
    ("pred", "pred.zarr", "VSCR (test)"),
    ("aligned", "aligned.zarr", "VSCR + align (test)"),
)


def run_stages(stages: list[Stage], verbosity: list[str]) -> dict[str, float]:
    """Run each stage's subcommand in this process; returns seconds per stage, stops at the first failure.

    What a stage prints on stdout goes to stderr: the demo's own output is its score table.
    """
    from vscr_cli.cli import run  # the CLI registers this module

    seconds = {}
    for number, stage in enumerate(stages, 1):
        console.stderr.rule(f"[{number}/{len(stages)}] {stage.title}")
        argv = [*verbosity, *map(str, stage.argv)]
        console.log.info("vscr %s", " ".join(argv))
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            code = run(argv)
        if code != 0:
            raise VscrError(f"demo stage {number} ({stage.title}) failed with exit status {code}: vscr {' '.join(argv)}")
        seconds[stage.title] = round(time.perf_counter() - start, 1)
    return seconds


def results_table(work: Path) -> tuple[Table, dict[str, dict[str, float]]]:
    """The demo's scores, one row per scored store, as a table and as plain numbers (fractions)."""
    columns = (("actor_action", "actor-action"), ("actor", "actor"), ("action", "action"))
    table = Table(title="mIoU and foreground IoU (%)")
    table.add_column("")
    for _, title in (*columns, (None, "fg IoU")):
        table.add_column(title, justify="right")
    numbers = {}
    for name, _, title in RESULT_ROWS:
        scores = json.loads((work / f"score-{name}.json").read_text())["scores"]
        row = {space: scores[space]["miou"] for space, _ in columns} | {"fg_iou": scores["fg_iou"]}
        numbers[name] = row
        table.add_row(title, *("-" if value is None else f"{100 * value:.1f}" for value in row.values()))
    return table, numbers


def command(
    work: Annotated[Path, typer.Argument(help="Working folder for the dataset, stores, model and overlays (its parent must exist).")] = Path("vscr-demo"),
    size: Annotated[Size, typer.Option(help="tiny: seconds (a smoke run); small: minutes on 2 cores; medium: the RESULTS.md benchmark.")] = Size.small,
    overlays: Annotated[int, typer.Option(min=0, help="Test videos to render as side-by-side PNG overlays (the first also as MP4).")] = 3,
    seed: Seed = 0,
    overwrite: Overwrite = False,
) -> None:
    work = check_output(work, DEMO, overwrite, resumable=False)
    work.mkdir(exist_ok=True)
    mark_output(work, DEMO)
    verbosity = ["-q"] if console.Verbosity.level < 0 else ["-v"] * console.Verbosity.level
    start = time.perf_counter()
    seconds = run_stages(demo_stages(work, SIZES[size], seed, overwrite), verbosity)
    seconds.update(run_stages(overlay_stages(work, overlays), verbosity))
    table, numbers = results_table(work)
    total = round(time.perf_counter() - start, 1)
    (work / "demo.json").write_text(json.dumps({"size": size.value, "seed": seed, "scores": numbers, "seconds": seconds, "total_seconds": total}, indent=2) + "\n")
    console.stdout.print(table)
    console.stdout.print(f"{total:.0f} s in all; scores, timings and overlays in {work}/ (demo.json, overlays/)", highlight=False)


def overlay_stages(work: Path, count: int) -> list[Stage]:
    """`vscr show` of the first ``count`` predicted test videos beside their frames and ground truth."""
    with open_store(work / "aligned.zarr", "pred") as store:
        videos = store.videos[:count]
    (work / "overlays").mkdir(exist_ok=True)
    common = ["--gt", work / "synth", "--side-by-side", "--overwrite"]
    stages = [Stage(f"overlay {video}", ["show", work / "aligned.zarr", "--video", video, "-o", work / "overlays" / f"{video}.png", *common]) for video in videos]
    if videos:
        stages.append(Stage(f"video of {videos[0]}", ["show", work / "aligned.zarr", "--video", videos[0], "-o", work / "overlays" / f"{videos[0]}.mp4", *common]))
    return stages
