"""The toolkit's own usage lines (README, "The pipeline") run as written, through bash, in a folder
holding ``videos/``, a tags CSV for cam and the stores they name; training shortened by options."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.tags import read_tags_csv, write_tags_csv

from .conftest import REPO

USAGE_LINES = [
    "vscr edges videos/ -o edges.zarr",
    "vscr train --cam cam.zarr --edges edges.zarr",
    "vscr predict clip.mp4 | vscr align",
    "vscr score --metrics miou,class_acc",
]
#: Only the training is shortened (tiny crops and batches, a few iterations).
SHORT_TRAINING = "--iterations 3 --batch-size 2 --crop 32"
#: Makes the folder hold the cam store line 2 names, quickly.
CAM_LINE = "vscr cam videos/ --tags tags.csv -o cam.zarr --epochs 1 --fit-frames 2 --input-height 64 --cam-heights 64"
#: The command under test is this interpreter's vscr_cli, whatever else PATH holds.
PRELUDE = f'set -euo pipefail\nvscr() {{ "{sys.executable}" -m vscr_cli "$@"; }}\n'


def user_folder(work: Path) -> None:
    """``videos/`` (4 synthetic clips of adults and dogs jumping or running), ``tags.csv`` for them
    and for ``clip.mp4``, a fifth clip whose ground truth is DAVIS-style beside it (``clip/masks/``)."""
    data = work.parent / "data"
    summary = synthesize(data, SynthConfig(videos=5, frames=6, height=64, width=96, annotated=2, multi_fraction=0, empty_fraction=0, dense=True, seed=1, classes=(15, 17, 75, 77)))
    release, tags = data / "Release", read_tags_csv(data / "tags.csv")
    *train, clip = [video.video_id for video in summary.videos]
    (work / "videos").mkdir(parents=True)
    for video in train:
        shutil.copy(release / "clips320H" / f"{video}.mp4", work / "videos")
    shutil.copy(release / "clips320H" / f"{clip}.mp4", work / "clip.mp4")
    (work / "clip" / "masks").mkdir(parents=True)
    for dense in sorted((release / "Annotations" / "dense" / clip).glob("*.png")):
        mask = (cv2.imread(str(dense), cv2.IMREAD_UNCHANGED) > 0).astype(np.uint8) * 255
        cv2.imwrite(str(work / "clip" / "masks" / dense.name), mask)
    write_tags_csv(work / "tags.csv", {**{video: tags[video] for video in train}, "clip": tags[clip]})


def bash(work: Path, script: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", PRELUDE + script], cwd=work, input=stdin, capture_output=True)


def said(done: subprocess.CompletedProcess) -> str:
    """stderr with the log's line wrapping undone."""
    return " ".join(done.stderr.decode().split())


def test_readme_pipeline_starts_with_the_usage_lines():
    pipeline = (REPO / "README.md").read_text().split("## The pipeline", 1)[1]
    block = pipeline.split("```sh\n", 1)[1].split("```", 1)[0]
    assert block.splitlines()[: len(USAGE_LINES)] == USAGE_LINES


def test_usage_lines_run_as_written(tmp_path, hed_weights_path, lite0_weights_path):
    work = tmp_path / "work"
    user_folder(work)
    edges, train, predict_align, score = USAGE_LINES
    for line in (CAM_LINE, edges, f"{train} {SHORT_TRAINING}"):
        done = bash(work, line)
        assert done.returncode == 0, (line, done.stderr.decode())
    assert (work / "model" / "model.safetensors").is_file() and "model written to model/" in said(done)
    assert f"preset {'gpu' if torch.cuda.is_available() else 'cpu'} (auto)" in said(done)
    again = bash(work, f"{train} {SHORT_TRAINING}")
    assert again.returncode == 1 and said(again).startswith("vscr: error: model") and "--overwrite" in said(again)

    scored = bash(work, f"{predict_align} | {score}")
    assert scored.returncode == 0, scored.stderr.decode()
    assert f"ground truth: {work} (where the prediction's sources are" in said(scored)
    table = scored.stdout.decode()
    assert "mIoU" in table and "class acc." in table and "global acc." not in table
    assert "6 frames of 1 videos" in table
