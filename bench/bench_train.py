"""Seconds per training iteration split into data / forward / k-means + loss / backward, and
prediction throughput, on this machine; each before (flow recomputed per clip) and after (flow
once per frame pair) the motion data path of issue 14, in one run.

    python bench/bench_train.py [--steps 6] [--shapes cpu_preset paper] [--rounds 2] [--out bench/results/train.json]

Synthesises a small dataset (8 videos of 16 frames, 320x426, A2D's height), makes its edges and
cam stores with the real commands, then times training steps at the CPU preset's shape (batch
8, 96x96 crops) and the paper's (batch 10, 224x224 crops), both with EfficientNet-Lite0 and the
flow encoder, in fp32 and under the default reduced precision where the device has it, with peak
resident memory; and `vscr predict` of every frame (dense, where overlapping clips share frame
pairs) on the full 320x426 frames, the best of ``--rounds`` runs.

"before" is the path this change replaced, kept here only to measure against: per sample one
store read per frame and the Farneback flow of the cropped clip; in prediction the flow of
every clip computed on its own. "after" is the code as it is. The two readers take turns step
by step (the network's phases are the same code), so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from bench_edges import run_measured  # beside this script (measures a command's own peak memory)
from vscr_cli import weights
from vscr_cli.core.flow import PairFlows, flow_stack
from vscr_cli.core.losses import PrototypeMemory
from vscr_cli.core.precision import autocast, autocast_dtype
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.model_folders import build_model
from vscr_cli.settings.train import TrainConfig, resolve
from vscr_cli.stages.train import (
    FrameCache,
    SampleReader,
    batch_slots,
    build_frame_cache,
    open_training_inputs,
    training_losses,
)
from vscr_cli.store import Store

REPO = Path(__file__).resolve().parents[1]
VIDEOS, FRAMES = 8, 16
SHAPES = {"cpu_preset": {"batch_size": 8, "crop": 96}, "paper": {"batch_size": 10, "crop": 224}}
# `vscr predict` with the flow of every clip computed on its own, as before the pair cache (run with
# bench/ on PYTHONPATH, as this script runs)
RECOMPUTE_PREDICT = "from bench_train import per_clip_stack; from vscr_cli.core.flow import PairFlows; PairFlows.stack = per_clip_stack; from vscr_cli.cli import main; main()"


class StoreReads(SampleReader):
    """The reads before this change: one store read per frame, nothing kept in memory."""

    def _frame(self, store: Store, video_id: str, name: str, position: int) -> np.ndarray:
        return np.asarray(store.array(video_id, name)[position])


def per_clip_stack(flows: PairFlows, clip: Sequence[int]) -> np.ndarray:
    """``PairFlows.stack`` as prediction computed it before: every clip's flow on its own."""
    return flow_stack([flows.frame(f) for f in clip])


def vscr(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vscr_cli", "-q", *args], check=True)


def make_dataset(work: Path) -> None:
    """The synthetic videos, their edges and cam stores (every 4th frame) and a 2-iteration model under ``work``."""
    synthesize(work / "data", SynthConfig(videos=VIDEOS, frames=FRAMES, height=320, width=426))
    vscr("edges", str(work / "data"), "--every", "4", "-o", str(work / "edges.zarr"))
    vscr("cam", str(work / "data"), "--tags", str(work / "data" / "tags.csv"), "--every", "4", "--epochs", "1", "--fit-frames", "4", "-o", str(work / "cam.zarr"))
    vscr("train", "--edges", str(work / "edges.zarr"), "--cam", str(work / "cam.zarr"), "-o", str(work / "model"), "--preset", "cpu", "--iterations", "2")


def predict_args(work: Path) -> list[str]:
    """`vscr predict` of every frame of the dataset (dense: neighbouring clips share frame pairs)."""
    return ["-q", "predict", str(work / "data"), "-m", str(work / "model"), "--overwrite", "-o", str(work / "pred.zarr")]


class Stepper:
    """A network, optimizer and memory bank at the shape of ``config``, trained one iteration at a time."""

    PHASES = ("data", "forward", "kmeans_and_loss", "backward")

    def __init__(self, config: TrainConfig, dtype: torch.dtype | None) -> None:
        self.config, self.dtype = config, dtype
        self.model = build_model(config, weights.load_state_dict("efficientnet-lite0-imagenet"))
        self.model.train()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.learning_rate, momentum=0.9)
        self.memory = PrototypeMemory(config.memory_iterations)
        self.objective = config.objective

    def step(self, reader: SampleReader, iteration: int) -> dict[str, float]:
        """Train iteration ``iteration`` on a batch from ``reader``: seconds of each phase."""
        samples = reader.data.samples
        marks = [time.perf_counter()]
        items = [reader.sample(*samples[n], rng) for n, rng in batch_slots(self.config, iteration, len(samples), 0, 1)]
        batch = {key: torch.from_numpy(np.stack([item[key] for item in items])) for key in items[0]}
        marks.append(time.perf_counter())
        with autocast("cpu", self.dtype):
            output = self.model(batch["image"], batch.get("motion"))
        marks.append(time.perf_counter())
        loss, terms, _, _ = training_losses(output, batch, self.memory, self.objective, self.config)
        marks.append(time.perf_counter())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.memory.update(terms.cam_prototypes, terms.cam_labels)
        marks.append(time.perf_counter())
        return {phase: end - start for phase, start, end in zip(self.PHASES, marks, marks[1:])}


def time_steps(readers: dict[str, SampleReader], config: TrainConfig, dtype: torch.dtype | None, steps: int) -> dict:
    """Median seconds of each phase over ``steps`` iterations per reader (after one warm-up each),
    the readers taking turns; data share = data / step."""
    stepper = Stepper(config, dtype)
    phases: dict[str, dict[str, list[float]]] = {name: {phase: [] for phase in Stepper.PHASES} for name in readers}
    for iteration in range(steps + 1):
        for name, reader in readers.items():
            seconds = stepper.step(reader, iteration)
            if iteration:  # the first step warms caches up (and loads the arrays into memory)
                for phase, value in seconds.items():
                    phases[name][phase].append(value)
    result = {}
    for name, values in phases.items():
        timing = {phase: float(np.median(seconds)) for phase, seconds in values.items()}
        timing["step"] = sum(timing.values())
        timing["data_share"] = timing["data"] / timing["step"]
        timing["kmeans_and_loss_share"] = timing["kmeans_and_loss"] / timing["step"]
        result[name] = timing
    result["step_speedup"] = result["before"]["step"] / result["after"]["step"]
    result["data_speedup"] = result["before"]["data"] / result["after"]["data"]
    return result


def predict_throughput(commands: dict[str, tuple[list[str], dict[str, str] | None]], frames: int, rounds: int) -> dict:
    """Frames/s of each command (the best of ``rounds`` runs, the commands taking turns) and after / before."""
    runs: dict[str, list[dict]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, (command, env) in commands.items():
            usage = run_measured(command, env)
            runs[name].append({"frames_per_second": frames / usage["wall_seconds"], "wall_seconds": usage["wall_seconds"], "peak_rss_mib": usage["peak_rss_mib"]})
    result: dict = {"frames": frames}
    for name, measured in runs.items():
        result[name] = {**max(measured, key=lambda run: run["frames_per_second"]), "frames_per_second_each_round": [run["frames_per_second"] for run in measured]}
    result["speedup"] = result["after"]["frames_per_second"] / result["before"]["frames_per_second"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=2, help="runs of each predict command (the best counts)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vscr-bench-train-"))
    make_dataset(work)
    report: dict = {"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(), "load_average_1min_at_start": os.getloadavg()[0], "frame_size": [320, 426], "shapes": {}}
    reduced = autocast_dtype("cpu")
    for name in args.shapes:
        config = resolve("paper", flags={"backbone": "tf_efficientnet_lite0", "motion": "flow", **SHAPES[name]})
        with open_training_inputs(str(work / "edges.zarr"), str(work / "cam.zarr"), None, None, 1.0) as data:
            (work / name).mkdir()
            started = time.perf_counter()
            cache = build_frame_cache(data, config, work / name)
            report["shapes"][name] = {"cache_build_seconds": time.perf_counter() - started}
            before = StoreReads(data, FrameCache(cache.rgb, None), config, config.architecture.mean_std)
            after = SampleReader(data, cache, config, config.architecture.mean_std)
            for label, dtype in (("fp32", None), (str(reduced).removeprefix("torch."), reduced)):
                if label == "None":
                    continue
                report["shapes"][name][label] = time_steps({"before": before, "after": after}, config, dtype, args.steps)
    report["training_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    bench_path = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "bench"), os.environ.get("PYTHONPATH")]))}
    commands = {"before": ([sys.executable, "-c", RECOMPUTE_PREDICT, *predict_args(work)], bench_path), "after": ([sys.executable, "-m", "vscr_cli", *predict_args(work)], None)}
    report["predict"] = predict_throughput(commands, VIDEOS * FRAMES, args.rounds)
    report["predict"]["note"] = "whole command on every frame: start-up, model loading, decoding, optical flow for the motion clips and inference"
    report["load_average_1min_at_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
