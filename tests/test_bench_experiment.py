"""bench/experiment.py's runner (products named by their commands' hashes, each made once) and
bench/results.py's groups (specs the runner can run, whose options every `vscr` command has)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from vscr_cli.cli import load_command

from .conftest import load_bench


@pytest.fixture(scope="module")
def bench() -> tuple[ModuleType, ModuleType]:
    """bench/experiment.py and bench/results.py, as the scripts import them (the runner's module the one
    the groups were written with)."""
    results = load_bench("results")
    return sys.modules[results.Runner.__module__], results


def fake_scores(value: float) -> str:
    metrics = {"actor_action": {"miou": value, "class_acc": value}, "actor": {"miou": value}, "action": {"miou": value}, "fg_iou": value, "frames": 4}
    return json.dumps({"scores": metrics})


class Recorder:
    """Stands in for `vscr`: records each command and makes its output (-o or the folder argument, a
    score file for `vscr score`, whose value is ``score``)."""

    def __init__(self, score: float = 0.5) -> None:
        self.ran: list[list[str]] = []
        self.score = score

    def __call__(self, arguments: list[str]) -> None:
        self.ran.append(arguments)
        if arguments[0] == "score":
            Path(arguments[arguments.index("--json") + 1]).write_text(fake_scores(self.score))
            return
        out = Path(arguments[arguments.index("-o") + 1] if "-o" in arguments else arguments[1])
        out.mkdir(parents=True)
        for marker in ("done", "demo.json", "config.json", "tags.csv"):  # what the steps' `done` name
            (out / marker).touch()


def two_groups(experiment: ModuleType, option: str = "--a") -> tuple:
    """Two groups sharing a seed-independent data step, each training a per-seed model on it."""
    Group, Row, Step, Ref, OUT, SEED = experiment.Group, experiment.Row, experiment.Step, experiment.Ref, experiment.OUT, experiment.SEED
    steps = {
        "data": Step(("synth", OUT, "--videos", 2), done="done"),
        "model": Step(("train", "--cam", Ref("data", "cam.zarr"), "--seed", SEED, option, "-o", OUT), done="done"),
        "pred": Step(("predict", Ref("data"), "-m", Ref("model"), "-o", OUT), suffix=".zarr"),
    }
    first = Group("first", "a test", steps, {"row-a": Row("row A", "pred", Ref("data"), ("--dense",))})
    second = Group("second", "a test", {"data": steps["data"], "model": steps["model"]}, {"row-b": Row("row B", Ref("data", "cam.zarr"), Ref("data"))})
    return first, second


def test_each_product_is_made_once_across_groups_seeds_and_runs(bench, tmp_path: Path) -> None:
    experiment, _ = bench
    recorder = Recorder()
    runner = experiment.Runner(tmp_path, execute=recorder)
    first, second = two_groups(experiment)
    runs = runner.run(first, [0, 1])
    commands = [arguments[0] for arguments in recorder.ran]
    # the data once for both seeds (no seed in its command), a model, prediction and score per seed
    assert commands == ["synth", "train", "predict", "score", "train", "predict", "score"]
    assert runs[0]["row-a"]["actor_action"] == pytest.approx(50.0) and runs[1]["row-a"]["frames"] == 4
    second_runs = runner.run(second, [0, 1])  # the same data step, not run again; its row has no seed: scored once
    assert [arguments[0] for arguments in recorder.ran[7:]] == ["score"] and second_runs[0] == second_runs[1]
    again = experiment.Runner(tmp_path, execute=recorder)
    again.run(first, [0, 1])
    assert len(recorder.ran) == 8  # every product there: nothing runs
    train = next(arguments for arguments in recorder.ran if arguments[0] == "train")
    data = tmp_path / next(path.name for path in tmp_path.iterdir() if path.name.startswith("synth-"))
    assert train[train.index("--cam") + 1] == str(data / "cam.zarr")  # a reference inside another product
    assert runner.commands["row-a"][0].startswith(f"vscr synth {experiment.readable(str(data))} --videos 2")  # as a user types it


def test_a_changed_option_renames_its_product_and_everything_downstream(bench, tmp_path: Path) -> None:
    experiment, _ = bench
    first, _ = two_groups(experiment)
    changed, _ = two_groups(experiment, option="--b")
    runner = experiment.Runner(tmp_path, execute=Recorder())
    assert runner.product(first, "data", 0) == runner.product(changed, "data", 0)
    assert runner.product(first, "model", 0) != runner.product(changed, "model", 0)
    assert runner.product(first, "pred", 0) != runner.product(changed, "pred", 0)  # through its reference
    assert runner.product(first, "model", 0) != runner.product(first, "model", 1)  # the seed is in it
    assert runner.product(first, "pred", 0).name.startswith("predict-") and runner.product(first, "pred", 0).suffix == ".zarr"


def test_a_group_with_an_unknown_or_circular_reference_is_refused(bench) -> None:
    experiment = bench[0]
    Group, Row, Step, Ref, OUT = experiment.Group, experiment.Row, experiment.Step, experiment.Ref, experiment.OUT
    unknown = Group("g", "", {"a": Step(("cam", Ref("missing"), "-o", OUT))}, {"r": Row("r", "a", Path("gt"))})
    with pytest.raises(ValueError, match="unknown step 'missing'"):
        unknown.check()
    circular = Group("g", "", {"a": Step(("cam", Ref("b"), "-o", OUT)), "b": Step(("cam", Ref("a"), "-o", OUT))}, {})
    with pytest.raises(ValueError, match="cycle: a -> b -> a"):
        circular.check()
    no_step = Group("g", "", {}, {"r": Row("r", "absent", Path("gt"))})
    with pytest.raises(ValueError, match="unknown step 'absent'"):
        no_step.check()


def test_the_record_keeps_every_seed_and_summarises_over_them(bench, tmp_path: Path) -> None:
    experiment, _ = bench
    first, _ = two_groups(experiment)
    record: dict = {"runs": {"0": {"row-a": {"actor_action": 10.0}}}, "commands": {"row-a": ["vscr old"]}}
    for seed, score in ((1, 0.2), (2, 0.4)):
        runner = experiment.Runner(tmp_path / str(seed), execute=Recorder(score))
        experiment.record_runs(record, runner.run(first, [seed]), runner.commands, ["row-a"])
    summary = record["mean_std"]["row-a"]
    assert summary["seeds"] == 3 and summary["actor_action"]["mean"] == pytest.approx((10 + 20 + 40) / 3)
    assert summary["actor_action"]["std"] == pytest.approx(15.275, abs=1e-3)
    assert record["commands"]["row-a"][0] == "vscr old" and len(record["commands"]["row-a"]) > 1


def test_the_runner_runs_the_real_vscr(bench, tmp_path: Path) -> None:
    experiment = bench[0]
    Group, Step, OUT = experiment.Group, experiment.Step, experiment.OUT
    ran: list[list[str]] = []
    runner = experiment.Runner(tmp_path, execute=lambda arguments: ran.append(arguments) or experiment.run_vscr(arguments))
    data = Group("g", "", {"data": Step(("synth", OUT, "--videos", 2, "--frames", 3, "--height", 32, "--width", 48), done="tags.csv")}, {})
    product = runner.ensure(data, "data", 0, "row")
    assert (product / "tags.csv").is_file() and len(ran) == 1
    runner.ensure(data, "data", 0, "row")
    assert len(ran) == 1


def option_names(command: str) -> set[str]:
    return {name for parameter in load_command(command).params for name in (*parameter.opts, *parameter.secondary_opts)}


def test_every_group_of_the_results_benchmark_resolves_with_options_vscr_has(bench, tmp_path: Path) -> None:
    experiment, results = bench
    assert len(results.GROUPS) >= 30 and {"action-head", "action-head-ablations", "davis-action-head"} <= set(results.GROUPS)
    recorder = Recorder()
    runner = experiment.Runner(tmp_path, execute=recorder)
    for group in results.GROUPS.values():
        runner.run(group, [0])
    for arguments in recorder.ran:
        unknown = [token for token in arguments[1:] if token.startswith("-") and not token.lstrip("-").replace(".", "").isdigit() and token not in option_names(arguments[0])]
        assert not unknown, f"vscr {arguments[0]} has no {unknown}: {arguments}"
    assert set(results.TITLES) >= {"action-full-test-tags", "heldout-full-test", "davis-action-head-crf-actor-tags", "no-motion-crop-share-crf-test"}
