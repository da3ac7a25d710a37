"""bench/davis.py's runner: what it runs and skips, how it names stores, and how seeds become rows."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from .conftest import load_bench


@pytest.fixture(scope="module")
def davis() -> ModuleType:
    return load_bench("davis")


def test_the_runner_runs_a_missing_product_once_and_records_every_command(davis: ModuleType, tmp_path: Path, monkeypatch) -> None:
    ran = []
    monkeypatch.setattr(davis.subprocess, "run", lambda command, check: ran.append(command) or (tmp_path / "made").touch())
    runner = davis.Runner()
    product = tmp_path / "made"
    assert runner.ensure(product, "edges", "videos", "-o", product) == product
    assert runner.ensure(product, "edges", "videos", "-o", product) == product  # there now: not run again
    assert len(ran) == 1 and ran[0][-5:] == ["-q", "edges", "videos", "-o", str(product)]
    assert len(runner.commands) == 2 and "edges videos -o" in runner.commands[0]


def test_store_names_and_the_summary_over_seeds(davis: ModuleType) -> None:
    assert davis.slug(["--doubt-band", "0.25"]) == "-doubt-band-0.25" and davis.slug([]) == ""
    per_seed = {
        "0": {"all: CAM, given tags": {"actor_action.miou": 50.0, "fg_iou": 40.0}, "all: VSCR, given tags": {"actor_action.miou": 40.0, "fg_iou": 30.0}},
        "1": {"all: CAM, given tags": {"actor_action.miou": 50.0, "fg_iou": 40.0}, "all: VSCR, given tags": {"actor_action.miou": 46.0, "fg_iou": 34.0}},
        "2": {"all: VSCR, given tags": {"actor_action.miou": 43.0, "fg_iou": 32.0}},
    }
    rows = davis.summary(per_seed)
    assert rows["all: VSCR, given tags"] == {"seeds": 3, "actor_action.miou": [43.0, 3.0], "fg_iou": [32.0, 2.0]}
    assert rows["all: CAM, given tags"] == {"seeds": 2, "actor_action.miou": [50.0, 0.0], "fg_iou": [40.0, 0.0]}
    table = davis.markdown({"variants": {"defaults": {"train_options": [], "summary": rows}}})
    assert "| all: VSCR, given tags | 3 | 43.0 ± 3.0 | 32.0 ± 2.0 |" in table


def test_a_second_round_trains_on_the_first_rounds_labels_and_both_rounds_are_scored(davis: ModuleType, tmp_path: Path, monkeypatch) -> None:
    class Recording(davis.Runner):
        def ensure(self, product: Path, *args: object) -> Path:
            self.commands.append(" ".join(map(str, args)))
            return product

    monkeypatch.setattr(davis, "score", lambda runner, store, gt: {"actor_action.miou": 50.0, "fg_iou": 40.0, "store": store.name})
    data = {name: tmp_path / name for name in ("dev", "more")}
    made = {"cam-dev": tmp_path / "cam-dev.zarr", "edges-dev": tmp_path / "edges-dev.zarr"}
    runner = Recording()
    rows = davis.seed_rows(runner, tmp_path, data, made, 0, "rounds-2", [], ["dev"], rounds=2)
    trainings = [command for command in runner.commands if command.startswith("train")]
    assert len(trainings) == 2 and "cam-dev.zarr" in trainings[0] and "labels-dev-round1.zarr" in trainings[1]
    assert rows["dev: VSCR round 1, given tags, CRF"]["store"] == "labels-dev-round1.zarr"  # the labels round 2 learnt from
    assert rows["dev: VSCR round 1, given tags"]["store"] == "pred-dev-round1--no-crf.zarr"
    assert rows["dev: VSCR, given tags, CRF"]["store"] == "pred-dev--crf.zarr"  # the last round, as with one round


def test_every_frame_stores_are_named_apart_and_every_stage_reads_the_same_frames(davis: ModuleType, tmp_path: Path, monkeypatch) -> None:
    class Recording(davis.Runner):
        def ensure(self, product: Path, *args: object) -> Path:
            self.commands.append((product.name, " ".join(map(str, args))))
            return product

    monkeypatch.setattr(davis, "score", lambda runner, store, gt: {"actor_action.miou": 50.0, "fg_iou": 40.0})
    data = {name: tmp_path / name for name in ("all", "dev", "more")}
    runner = Recording()
    made = davis.stores(runner, tmp_path, data, [], ["all"], every=1)
    assert made["edges-all"].name == "edges-all-every1.zarr" and made["cam-all-crf"].name == "cam-all-crf-every1.zarr"
    davis.seed_rows(runner, tmp_path, data, made, 0, "every-frame", [], ["all"], rounds=1, every=1)
    reading = [command for _, command in runner.commands if not command.startswith("train")]
    assert len(reading) == 5 and all("--every 1" in command for command in reading)  # edges, cam, cam --crf, two predictions
    default = davis.stores(Recording(), tmp_path, data, [], ["all"])
    assert default["edges-all"].name == "edges-all.zarr" and default["cam-all"].name == "cam-all.zarr"  # the runs before --every


def test_the_holdout_folds_pool_their_scores_as_one_scoring_of_all_their_frames() -> None:
    holdout = load_bench("davis_holdout")
    from vscr_cli.stages.score import ConfusionAccumulator

    rng = np.random.default_rng(0)
    folds, together = [], ConfusionAccumulator()
    for ids in ((0, 19, 57), (0, 17, 19, 49)):  # background, actor-action classes; 49 only ever predicted
        accumulator = ConfusionAccumulator()
        gt = rng.choice(np.array(ids[:3], dtype=np.uint8), size=(3, 12, 16))
        pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.choice(np.array(ids, dtype=np.uint8), size=gt.shape)).astype(np.uint8)
        for target in (accumulator, together):
            target.add(gt, pred)
        folds.append({"scores": accumulator.scores().as_dict()})
    expected = together.scores()
    pooled = holdout.pooled(folds)
    assert pooled == {"actor_action.miou": round(100 * expected.actor_action.miou, 2), "fg_iou": round(100 * expected.fg_iou, 2)}
    assert pooled != holdout.pooled(folds[:1])  # the second fold counts
