"""The demo pipeline as a library: a freshly synthesised dataset through synth, edges, cam, train,
predict, align, score and show, each stage called through its ``run()`` as its command would call it
(``vscr demo`` is the command)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from vscr_cli import console, labels
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.errors import VscrError
from vscr_cli.options import Device, Precision, runtime
from vscr_cli.settings.cam import CamParams, ClassifierConfig
from vscr_cli.settings.demo import DEMO, DEMO_CLASSES, SIZES, DemoSize, Size
from vscr_cli.settings.predict import DEFAULT_CRF, DEFAULT_TAG_VOTES, PredictParams, check_tag_votes
from vscr_cli.settings.run import RunOptions
from vscr_cli.settings.train import resolve
from vscr_cli.stages import align, cam, edges, predict, report, score, show, train
from vscr_cli.store import check_output, mark_output, open_store
from vscr_cli.video import FrameSelection


@dataclass(frozen=True)
class Stage:
    title: str
    run: Callable[[], object]  # the stage's library call


def demo_stages(
    work: Path, size: DemoSize, seed: int, overwrite: bool, crf: bool = DEFAULT_CRF, votes: str = DEFAULT_TAG_VOTES, action_head: bool = True
) -> list[Stage]:
    """The stages the demo runs, in order, as the commands would with these options: training on
    the train split (``action_head``: vscr train --action-head), scoring its frames and the test split
    (``crf``, ``votes``: vscr predict's --crf and, where tags are given, --tag-votes)."""
    synth, model, classifier, tags = work / "synth", work / "model", work / "cam.classifier", str(work / "synth" / "tags.csv")
    computing = runtime(Device.auto, Precision.auto, RunOptions(overwrite=overwrite))
    training_frames = FrameSelection(every=size.every)
    annotated = FrameSelection(annotated_only=True)
    synth_config = SynthConfig(videos=size.videos, frames=size.frames, annotated=size.annotated, height=size.height, width=size.width, classes=labels.parse_tags(DEMO_CLASSES), seed=seed, dense=True)
    classifier_config = ClassifierConfig(epochs=size.epochs, frames_per_video=size.fit_frames, seed=seed)
    tagged = PredictParams(decode="tags", crf=crf, tag_votes=votes)
    training = {"iterations": size.iterations, "seed": seed, "action_head": action_head, **({"crop": size.crop} if size.crop else {})}
    return [
        Stage("synthesise a dataset", lambda: synthesize(synth, synth_config, overwrite=overwrite)),
        Stage("edges of the train split", lambda: edges.run([str(synth)], work / "edges.zarr", computing, selection=training_frames, split="train")),
        Stage("CAM pseudo-labels of the train split", lambda: cam.run([str(synth)], work / "cam.zarr", tags, computing, config=classifier_config, classifier=classifier, selection=training_frames, split="train")),
        Stage("CAM pseudo-labels of the test split (the baseline, given the tags)", lambda: cam.run([str(synth)], work / "cam-test.zarr", tags, computing, classifier=classifier, selection=annotated, split="test")),
        Stage("the same pseudo-labels through the dense CRF (train split; the like-with-like baseline)", lambda: cam.run([str(synth)], work / "cam-crf.zarr", tags, computing, CamParams(crf=True), classifier=classifier, selection=training_frames, split="train")),
        Stage("the same through the dense CRF (test split)", lambda: cam.run([str(synth)], work / "cam-test-crf.zarr", tags, computing, CamParams(crf=True), classifier=classifier, selection=annotated, split="test")),
        Stage("train the VSCR network", lambda: train.run(str(work / "edges.zarr"), str(work / "cam.zarr"), computing, model, config=resolve("cpu", flags=training), preset="cpu")),
        Stage("predict the training frames (their tags given, as to CAM)", lambda: predict.run([str(synth)], work / "pred-train.zarr", model, computing, training_frames, "train", tags, tagged)),
        Stage("predict the test split (tags given)", lambda: predict.run([str(synth)], work / "pred-tags.zarr", model, computing, annotated, "test", tags, tagged)),
        Stage("predict the test split (no tags)", lambda: predict.run([str(synth)], work / "pred.zarr", model, computing, split="test", params=PredictParams(crf=crf))),
        Stage("align predictions over time", lambda: align.run(str(work / "pred.zarr"), work / "aligned.zarr", overwrite=overwrite)),
        *(Stage(f"score {name}", functools.partial(_score, work / store, synth, work / f"score-{name}.json", name.endswith("train"))) for name, store, _ in result_rows(crf)),
    ]


def _score(store: Path, gt: Path, destination: Path, predicted_only: bool) -> None:
    """``vscr score STORE --gt GT --json REPORT``: the train rows score only the frames predicted."""
    _, scored = score.run(str(store), gt, predicted_only=predicted_only)
    destination.write_text(score.report_json(scored) + "\n")


#: Rows of the final table: (score file, store scored, what it is; ``{crf}`` names the network's dense
#: CRF where the predictions have it). The train rows score the annotated frames among the training
#: frames (--predicted-only): the network against the pseudo-labels it learnt, those also through
#: the network's dense CRF (the like-with-like baseline).
RESULT_ROWS = (
    ("cam-train", "cam.zarr", "CAM (train)"),
    ("cam-crf-train", "cam-crf.zarr", "CAM + CRF (train)"),
    ("pred-train", "pred-train.zarr", "VSCR{crf} (train)"),
    ("cam", "cam-test.zarr", "CAM (test, tags given)"),
    ("cam-crf", "cam-test-crf.zarr", "CAM + CRF (test, tags given)"),
    ("pred-tags", "pred-tags.zarr", "VSCR{crf} (test, tags given)"),
    ("pred", "pred.zarr", "VSCR{crf} (test)"),
    ("aligned", "aligned.zarr", "VSCR{crf} + align (test)"),
)


def result_rows(crf: bool) -> list[tuple[str, str, str]]:
    """:data:`RESULT_ROWS` with the titles of predictions made with (``crf``) or without the dense CRF."""
    return [(name, store, title.format(crf=" + CRF" if crf else "")) for name, store, title in RESULT_ROWS]


def run_stages(stages: list[Stage]) -> dict[str, float]:
    """Run each stage in this process; returns seconds per stage, stops at the first failure."""
    seconds = {}
    for number, stage in enumerate(stages, 1):
        console.stderr.rule(f"[{number}/{len(stages)}] {stage.title}")
        start = time.perf_counter()
        try:
            stage.run()
        except VscrError as error:
            raise VscrError(f"demo stage {number} ({stage.title}) failed: {error}") from error
        seconds[stage.title] = round(time.perf_counter() - start, 1)
    return seconds


def results_table(work: Path, crf: bool) -> tuple[Table, dict[str, dict[str, float]]]:
    """The demo's scores, one row per scored store (predictions made with the dense CRF: ``crf``), as
    a table and as plain numbers (fractions)."""
    columns = (("actor_action", "actor-action"), ("actor", "actor"), ("action", "action"))
    table = Table(title="mIoU and foreground IoU (%)")
    table.add_column("")
    for _, title in (*columns, (None, "fg IoU")):
        table.add_column(title, justify="right")
    numbers = {}
    for name, _, title in result_rows(crf):
        scores = json.loads((work / f"score-{name}.json").read_text())["scores"]
        row = {space: scores[space]["miou"] for space, _ in columns} | {"fg_iou": scores["fg_iou"]}
        numbers[name] = row
        table.add_row(title, *("-" if value is None else f"{100 * value:.1f}" for value in row.values()))
    return table, numbers


def overlay_stages(work: Path, count: int) -> list[Stage]:
    """`vscr show` of the first ``count`` predicted test videos beside their frames and ground truth."""
    with open_store(work / "aligned.zarr", "pred") as store:
        videos = store.videos[:count]
    (work / "overlays").mkdir(exist_ok=True)
    stages = [Stage(f"overlay {video}", functools.partial(_overlay, work, video, ".png")) for video in videos]
    if videos:
        stages.append(Stage(f"video of {videos[0]}", functools.partial(_overlay, work, videos[0], ".mp4")))
    return stages


def _overlay(work: Path, video: str, suffix: str) -> None:
    """``vscr show aligned.zarr --video VIDEO --gt synth --side-by-side``."""
    show.run(str(work / "aligned.zarr"), work / "overlays" / f"{video}{suffix}", video, gt=work / "synth", side_by_side=True, overwrite=True)


def report_stage(work: Path, overwrite: bool, crf: bool) -> Stage:
    """``vscr report`` of the demo's score reports (in the table's order and names) and its training run."""
    names = {work / f"score-{name}.json": title for name, _, title in result_rows(crf)}
    return Stage("write the report", lambda: report.run([*names, work / "model"], work / "report", "vscr demo", overwrite, names))


def run_demo(
    work: Path,
    size: Size = Size.small,
    overlays: int = 3,
    seed: int = 0,
    overwrite: bool = False,
    crf: bool = DEFAULT_CRF,
    votes: str = DEFAULT_TAG_VOTES,
    action_head: bool = True,
) -> tuple[Table, dict]:
    """``vscr demo``: every stage into the working folder ``work`` (made, or replaced with
    ``overwrite`` when it is a demo folder), ``overlays`` test videos rendered, predictions sharpened
    by the dense CRF with ``crf``, the tagged ones decoded with ``votes`` (vscr predict --tag-votes),
    the network trained with or without the action head (``action_head``), and the page of it all
    (``work/report/index.html``, vscr report); returns the score table and the record written to
    ``work/demo.json`` (scores, seconds per stage, the report's path)."""
    check_tag_votes(votes)
    work = check_output(work, DEMO, overwrite, resumable=False)
    work.mkdir(exist_ok=True)
    mark_output(work, DEMO)
    start = time.perf_counter()
    seconds = run_stages(demo_stages(work, SIZES[size], seed, overwrite, crf, votes, action_head))
    seconds.update(run_stages(overlay_stages(work, overlays)))
    seconds.update(run_stages([report_stage(work, overwrite, crf)]))
    table, numbers = results_table(work, crf)
    record = {"size": size.value, "seed": seed, "crf": crf, "tag_votes": votes, "action_head": action_head, "scores": numbers, "report": str(work / "report" / report.PAGE), "seconds": seconds, "total_seconds": round(time.perf_counter() - start, 1)}
    (work / "demo.json").write_text(json.dumps(record, indent=2) + "\n")
    return table, record
