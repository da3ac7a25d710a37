"""Refusals first (issue #35 case 16, issue #39): a bad output path, an existing output or a missing
input is refused in one line before the command imports torch and the models.

Each case runs the command in a real process of this checkout and reports whether torch was
imported by the time it returned: deterministic, not timed (bench/refusals.py times them). The
error lines are the ones the stages give when they read the inputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

#: Runs ``vscr ARGS`` in this process and prints whether torch was imported and the exit status.
PROBE = "import sys; from vscr_cli.cli import run; code = run(sys.argv[1:]); print('torch' in sys.modules, code)"


def refusal(folder: Path, *args: str) -> str:
    """The one ``vscr: error:`` line of ``vscr ARGS`` run in ``folder``, after checking that it exited
    with 1 without importing torch."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=folder, env=environment, capture_output=True, text=True, timeout=300)
    torch_imported, code = done.stdout.split()[-2:]
    assert code == "1", done.stderr
    errors = done.stderr.splitlines()
    assert len(errors) == 1 and errors[0].startswith("vscr: error: "), done.stderr
    assert torch_imported == "False", f"torch was imported before the refusal: {errors[0]}"
    return errors[0].removeprefix("vscr: error: ")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A working folder holding a video file, an existing output of each kind, a model record and a
    tags CSV: what the refused commands name besides the missing things."""
    (tmp_path / "clip.mp4").write_bytes(b"")  # only its existence is checked before the refusal
    for existing in ("out.zarr", "model", "vscr-demo"):
        (tmp_path / existing).mkdir()
        (tmp_path / existing / "something").write_text("not vscr's\n")
    (tmp_path / "trained").mkdir()
    (tmp_path / "trained" / "config.json").write_text("{}")
    (tmp_path / "tags.csv").write_text("video,tags\nclip,15\n")
    return tmp_path


EXISTS = "out.zarr: output exists (pass --overwrite to replace it or --resume to extend it)"
MODEL_EXISTS = "model: output exists (pass --overwrite to replace it or --resume to extend it)"
REFINED_EXISTS = "model: output exists (pass --overwrite to replace it)"
NO_PARENT = "nowhere/out.zarr: parent folder nowhere does not exist"
NO_SOURCE = "missing.mp4: no such file or folder"
NO_TAGS = "missing.csv: cannot read tags (No such file or directory)"
NO_MODEL = "missing: not a trained vscr model (no config.json)"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("edges", "clip.mp4", "-o", "out.zarr"), EXISTS),
        (("edges", "clip.mp4", "-o", "nowhere/out.zarr"), NO_PARENT),
        (("edges", "missing.mp4", "-o", "new.zarr"), NO_SOURCE),
    ],
    ids=["existing-output", "missing-parent", "missing-source"],
)
def test_edges_refuses_before_importing_torch(folder, args, expected):
    assert refusal(folder, *args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("cam", "clip.mp4", "--tags", "tags.csv", "-o", "out.zarr"), EXISTS),
        (("cam", "missing.mp4", "--tags", "tags.csv", "-o", "new.zarr"), NO_SOURCE),
        (("cam", "clip.mp4", "--tags", "missing.csv", "-o", "new.zarr"), NO_TAGS),
    ],
    ids=["existing-output", "missing-source", "missing-tags"],
)
def test_cam_refuses_before_importing_torch(folder, args, expected):
    assert refusal(folder, *args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("train", "--edges", "out.zarr", "--cam", "out.zarr", "-o", "model"), MODEL_EXISTS),
        (("train", "--edges", "missing.zarr", "--cam", "out.zarr", "-o", "new"), "missing.zarr: no such store"),
        (("train", "--edges", "out.zarr", "--cam", "out.zarr", "--tags", "missing.csv", "-o", "new"), NO_TAGS),
        (("train", "--edges", "out.zarr", "--cam", "out.zarr", "--config", "missing.toml", "-o", "new"), "missing.toml: No such file or directory"),
    ],
    ids=["existing-output", "missing-store", "missing-tags", "missing-config"],
)
def test_train_refuses_before_importing_torch(folder, args, expected):
    assert refusal(folder, *args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("refine", "--edges", "out.zarr", "--cam", "out.zarr", "-m", "trained", "-o", "model"), REFINED_EXISTS),
        (("refine", "--edges", "out.zarr", "--cam", "out.zarr", "-m", "missing", "-o", "new"), NO_MODEL),
        (("refine", "--edges", "out.zarr", "--cam", "missing.zarr", "-m", "trained", "-o", "new"), "missing.zarr: no such store"),
    ],
    ids=["existing-output", "missing-model", "missing-store"],
)
def test_refine_refuses_before_importing_torch(folder, args, expected):
    assert refusal(folder, *args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("predict", "clip.mp4", "-m", "trained", "-o", "out.zarr"), EXISTS),
        (("predict", "clip.mp4", "-m", "missing", "-o", "new.zarr"), NO_MODEL),
        (("predict", "missing.mp4", "-m", "trained", "-o", "new.zarr"), NO_SOURCE),
        (("predict", "clip.mp4", "-m", "trained", "--tags", "missing.csv", "-o", "new.zarr"), NO_TAGS),
    ],
    ids=["existing-output", "missing-model", "missing-source", "missing-tags"],
)
def test_predict_refuses_before_importing_torch(folder, args, expected):
    assert refusal(folder, *args) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("demo", "vscr-demo"), "vscr-demo: output exists (pass --overwrite to replace it)"),
        (("demo", "nowhere/vscr-demo"), "nowhere/vscr-demo: parent folder nowhere does not exist"),
    ],
    ids=["existing-output", "missing-parent"],
)
def test_demo_refuses_before_importing_torch(folder, args, expected):
    assert refusal(folder, *args) == expected
