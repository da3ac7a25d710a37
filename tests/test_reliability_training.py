"""Issue #35, the training side: train, cam's classifier, model records and weights files. Each case
(numbered as in the issue) asserts the exit code, exactly one stderr line `vscr: error: FILE: problem`,
no traceback, and the contents of every folder the command touches before and after."""

from __future__ import annotations

import builtins
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from vscr_cli import weights
from vscr_cli.cli import run
from vscr_cli.stages.train import loop as train_loop

from .conftest import TINY_TRAIN
from .test_reliability import _one_line_error, _tree

#: The issue's reproductions: `vscr synth s --videos 4 --frames 6 --height 48 --width 64` (three
#: train videos, two of them single-tag) and a cam classifier fitted as fast as the options allow.
SMALL_SYNTH = ["--videos", "4", "--frames", "6", "--height", "48", "--width", "64"]
FAST_CAM = ["--split", "train", "--max-frames", "2", "--fit-frames", "2", "--input-height", "32", "--cam-heights", "32", "--motion-weight", "0"]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`vscr synth s --videos 4 --frames 6 --height 48 --width 64`."""
    root = tmp_path_factory.mktemp("small") / "s"
    assert run(["-q", "synth", str(root), *SMALL_SYNTH]) == 0
    return root


@pytest.fixture(scope="module")
def fitted(small: Path, tmp_path_factory: pytest.TempPathFactory, lite0_weights_path: Path) -> Path:
    """out/exp.zarr and the classifier vscr fitted for it (one epoch), out/exp.classifier."""
    out = tmp_path_factory.mktemp("fitted") / "out"
    out.mkdir()
    assert run(["-q", "cam", str(small / "Release"), "--tags", str(small / "tags.csv"), "-o", str(out / "exp.zarr"), "--epochs", "1", *FAST_CAM]) == 0
    return out


def _cam(cli, small: Path, output: Path, *options: str):
    return cli("-q", "cam", small / "Release", "--tags", small / "tags.csv", "-o", output, *FAST_CAM, *options)


def _copy(folder: Path, tmp_path: Path) -> Path:
    shutil.copytree(folder, tmp_path / folder.name)
    return tmp_path / folder.name


# -- 2. train --overwrite keeps the old model until the new one exists --------------------------------------
def _train(cli, trained, output: Path, *options: str):
    return cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", output, *TINY_TRAIN, *options)


def test_a_failed_overwrite_keeps_the_old_model(cli, tmp_path, trained):
    shutil.copytree(trained.model, tmp_path / "m2")  # cp -a m m2
    before = _tree(tmp_path)
    result = _train(cli, trained, tmp_path / "m2", "--overwrite", "--iterations", "5", "--backbone-weights", "/nonexistent.safetensors")
    assert _tree(tmp_path) == before  # the old model whole, no staging folder, no lock left
    _one_line_error(result, "/nonexistent.safetensors: weights file does not exist")


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "training never reached its first checkpoint"
        time.sleep(0.05)


def test_a_killed_overwrite_keeps_the_old_model_and_resume_finishes_it(cli, tmp_path, trained):
    old = tmp_path / "m2"
    shutil.copytree(trained.model, old)
    options = tmp_path / "options.toml"
    options.write_text("checkpoint_every = 2\nlog_every = 1\n")
    before = _tree(old)
    staging, inode = tmp_path / ".m2.partial", old.stat().st_ino
    command = ["-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", old, *TINY_TRAIN, "--iterations", "40", "--config", options]
    process = subprocess.Popen([sys.executable, "-m", "vscr_cli", *map(str, command), "--overwrite"], stderr=subprocess.PIPE, text=True)
    try:  # kill -9 once training has written a checkpoint (or, before the fix, once the old model is gone)
        _wait_for(lambda: (staging / "checkpoint.pt").is_file() or not old.exists() or old.stat().st_ino != inode, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert _tree(old) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m2.lock", ".m2.partial", "m2", "options.toml"]
    assert (staging / "checkpoint.pt").is_file()
    resumed = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", old, *TINY_TRAIN, "--iterations", "40", "--config", options, "--resume")
    assert resumed.code == 0 and resumed.stderr == "", resumed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m2", "options.toml"]
    assert json.loads((old / "config.json").read_text())["train"]["iterations"] == 40
    assert [json.loads(line)["iteration"] for line in (old / "metrics.jsonl").read_text().splitlines()] == list(range(1, 41))


def test_a_resumed_run_logs_every_iteration_once(cli, tmp_path, trained, monkeypatch):
    """Interrupted after iteration 6 (checkpoint at 4): the rerun is refused without --resume, and the
    resumed run's log has iterations 1..8 once each, not 5 and 6 twice."""
    model, options = tmp_path / "m", tmp_path / "options.toml"
    options.write_text("checkpoint_every = 4\nlog_every = 1\n")
    learning_rate = train_loop.poly_learning_rate

    def interrupt_at_7(config, iteration):
        if iteration == 6:
            raise KeyboardInterrupt
        return learning_rate(config, iteration)

    monkeypatch.setattr(train_loop, "poly_learning_rate", interrupt_at_7)
    assert _train(cli, trained, model, "--iterations", "8", "--config", options).code == 130
    monkeypatch.undo()
    staging = tmp_path / ".m.partial"
    assert not model.exists() and (staging / "checkpoint.pt").is_file()
    before = _tree(tmp_path)
    _one_line_error(_train(cli, trained, model, "--iterations", "8", "--config", options), str(model), "checkpoint", "--resume")
    assert _tree(tmp_path) == before
    assert _train(cli, trained, model, "--iterations", "8", "--config", options, "--resume").code == 0
    assert [json.loads(line)["iteration"] for line in (model / "metrics.jsonl").read_text().splitlines()] == list(range(1, 9))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "options.toml"]


# -- 3. cam writes its classifier only where it may ---------------------------------------------------------
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_cam_never_writes_into_a_folder_it_did_not_make(cli, tmp_path, small, overwrite):
    out = tmp_path / "out"
    (out / "usr.classifier").mkdir(parents=True)
    (out / "usr.classifier" / "classifier.json").write_text('{"my": "notes"}\n')
    before = _tree(tmp_path)
    expected = "did not make" if overwrite else "output exists"
    _one_line_error(_cam(cli, small, out / "usr.zarr", *overwrite), str(out / "usr.classifier"), expected)
    assert _tree(tmp_path) == before


def test_cam_names_its_classifier_by_the_whole_output_name(cli, tmp_path, small, fitted):
    out = _copy(fitted, tmp_path)
    before = _tree(out)
    result = _cam(cli, small, out / "exp.v2.zarr", "--epochs", "2")
    assert result.code == 0 and result.stderr == "", result.stderr
    after = _tree(out)
    assert {name: data for name, data in after.items() if name in before} == before  # exp.classifier untouched
    assert json.loads(after["exp.v2.classifier/classifier.json"])["epochs"] == 2
    assert {name.split("/")[0] for name in after} == {"exp.zarr", "exp.classifier", "exp.v2.zarr", "exp.v2.classifier"}


def test_cam_refuses_a_classifier_fitted_with_other_settings(cli, tmp_path, small, fitted):
    out = _copy(fitted, tmp_path)
    before = _tree(tmp_path)
    _one_line_error(_cam(cli, small, out / "new.zarr", "--classifier", out / "exp.classifier", "--epochs", "3"), str(out / "exp.classifier"), "epochs 1, not epochs 3", "--overwrite")
    _one_line_error(_cam(cli, small, out / "exp.zarr", "--overwrite", "--epochs", "3", "--weights", "/nonexistent.pth"), "/nonexistent.pth: weights file does not exist")
    assert _tree(tmp_path) == before  # a failed refit leaves the old classifier whole


def test_cam_overwrite_refits_a_classifier_of_other_settings(cli, tmp_path, small, fitted):
    out = _copy(fitted, tmp_path)
    before = _tree(out)
    result = _cam(cli, small, out / "exp.zarr", "--overwrite", "--epochs", "2")
    assert result.code == 0 and result.stderr == "", result.stderr
    after = _tree(out)
    assert json.loads(after["exp.classifier/classifier.json"])["epochs"] == 2
    assert after["exp.classifier/classifier.safetensors"] != before["exp.classifier/classifier.safetensors"]
    assert {name for name in after if name.startswith("exp.classifier/")} == {f"exp.classifier/{name}" for name in ("classifier.json", "classifier.safetensors", "vscr-output.json")}
    assert {name.split("/")[0] for name in after} == {"exp.zarr", "exp.classifier"}
    assert _cam(cli, small, out / "again.zarr", "--classifier", out / "exp.classifier", "--epochs", "2").code == 0  # now reused


# -- 13. malformed model records and option files -------------------------------------------------------------
def test_an_unknown_backbone_in_a_model_record_is_one_line(cli, tmp_path, trained, synth):
    model = tmp_path / "model"
    shutil.copytree(trained.model, model, ignore=shutil.ignore_patterns("frames.zarr", "flows.zarr"))
    record = json.loads((model / "config.json").read_text())
    record["train"]["backbone"] = "resnet9000"
    (model / "config.json").write_text(json.dumps(record))
    before = _tree(tmp_path)
    _one_line_error(cli("-q", "predict", synth.root, "-m", model, "--max-frames", "1", "-o", tmp_path / "p.zarr"), f"{model / 'config.json'}: unknown backbone 'resnet9000'")
    assert _tree(tmp_path) == before


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("crop = [\n", "not a valid TOML file"),
        ('output_stride = "eight"\n', "output_stride: Input should be a valid integer"),
        ('[objective]\nedge_concentration = "high"\n', "objective.edge_concentration: Input should be a valid number"),
        ("seed = 2.5\n", "seed: Input should be a valid integer"),
    ],
)
def test_a_bad_config_file_is_one_line(cli, tmp_path, trained, text, fragment):
    options = tmp_path / "options.toml"
    options.write_text(text)
    before = _tree(tmp_path)
    _one_line_error(_train(cli, trained, tmp_path / "m", "--config", options), f"{options}: ", fragment)
    assert _tree(tmp_path) == before


# -- 14. a hostile pickle is refused in one line, and never run ---------------------------------------------
class _Payload:
    """Unpickling this would create the file ``marker`` (what a hostile pickle could do instead)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


@pytest.fixture
def hostile(tmp_path: Path) -> Path:
    """evil.pth: a state dict whose one value unpickles by calling open()."""
    (tmp_path / "in").mkdir()
    path = tmp_path / "in" / "evil.pth"
    torch.save({"conv.weight": _Payload(tmp_path / "in" / "pwned")}, path)
    return path


def _refused(result, hostile: Path) -> None:
    _one_line_error(result, f"{hostile}: refused: the pickle asks for", "never runs")
    assert "weights_only" not in result.stderr and not (hostile.parent / "pwned").exists()


def test_a_hostile_pickle_as_backbone_weights_is_refused(cli, tmp_path, trained, hostile):
    before = _tree(tmp_path)
    _refused(_train(cli, trained, tmp_path / "m", "--backbone-weights", hostile), hostile)
    assert _tree(tmp_path) == before


def test_a_hostile_pickle_as_cam_weights_is_refused(cli, tmp_path, small, hostile):
    before = _tree(tmp_path)
    _refused(_cam(cli, small, tmp_path / "c.zarr", "--weights", hostile), hostile)
    assert _tree(tmp_path) == before


def test_a_hostile_pickle_in_the_torch_hub_cache_is_refused(cli, tmp_path, small, hostile, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = weights.hub_cached_path("resnet50-imagenet")
    cached.parent.mkdir(parents=True)
    shutil.copy(hostile, cached)
    before = _tree(tmp_path)
    _refused(_cam(cli, small, tmp_path / "c.zarr", "--arch", "resnet50"), cached)
    assert _tree(tmp_path) == before and not (hostile.parent / "pwned").exists()


# -- also: one file mode for every output --------------------------------------------------------------------
def test_model_and_classifier_files_have_the_mode_of_every_output(trained):
    umask = os.umask(0)
    os.umask(umask)
    classifier = trained.cam.with_name("cam.classifier")
    files = [p for folder in (trained.model, classifier) for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"model.safetensors", "classifier.safetensors", "config.json", "classifier.json"}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(0o666 & ~umask) for p in files}
