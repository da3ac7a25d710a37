"""Seconds per training iteration split into data / forward / k-means + loss / backward, and
prediction throughput, on this machine.

    python bench/bench_train.py [--steps 6] [--out bench/results/train.json]

Synthesises a small dataset (320x426 frames, A2D's height), makes its edges and cam stores with
the real commands, then times training steps at the CPU preset's shape (batch 8, 96x96 crops)
and the paper's (batch 10, 224x224 crops), both with EfficientNet-Lite0 and the flow encoder, in fp32 and under the default reduced precision
where the device has it, with peak resident memory; and `vscr predict` frames per second on
the full 320x426 frames. The share of k-means + loss in a step is the issue-5 figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_edges import run_measured  # noqa: E402  (measures a command's own peak memory)
from vscr_cli import weights
from vscr_cli.core.losses import PrototypeMemory
from vscr_cli.core.precision import autocast, autocast_dtype
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.stages.train import SampleReader, batch_slots, build_frame_cache, build_model, make_config, mean_std, open_training_inputs, training_losses


def vscr(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "vscr_cli", "-q", *args], check=True)


def time_steps(data, frames, config, dtype, steps: int) -> dict:
    """Median seconds of each phase over ``steps`` iterations (after one warm-up)."""
    model = build_model(config, weights.load_state_dict("efficientnet-lite0-imagenet"))
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=0.9)
    reader = SampleReader(data, frames, config, mean_std(config.backbone))
    samples = data.samples
    memory = PrototypeMemory(config.memory_iterations)
    objective = config.objective()
    phases: dict[str, list[float]] = {"data": [], "forward": [], "kmeans_and_loss": [], "backward": []}
    for iteration in range(steps + 1):
        clock = time.perf_counter()
        items = [reader.sample(*samples[n], rng) for n, rng in batch_slots(config, iteration, len(samples), 0, 1)]
        batch = {key: torch.from_numpy(np.stack([item[key] for item in items])) for key in items[0]}
        marks = [time.perf_counter()]
        with autocast("cpu", dtype):
            output = model(batch["image"], batch.get("motion"))
        marks.append(time.perf_counter())
        loss, terms, _ = training_losses(output, batch, memory, objective, config)
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        memory.update(terms.cam_prototypes, terms.cam_labels)
        marks.append(time.perf_counter())
        if iteration:  # the first step warms caches up
            for name, start, end in zip(phases, [clock, *marks[:-1]], marks):
                phases[name].append(end - start)
    result = {name: float(np.median(values)) for name, values in phases.items()}
    result["step"] = sum(result.values())
    result["kmeans_and_loss_share"] = result["kmeans_and_loss"] / result["step"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "train.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vscr-bench-train-"))
    synthesize(work / "data", SynthConfig(videos=8, frames=16, height=320, width=426))
    vscr("edges", str(work / "data"), "--every", "4", "-o", str(work / "edges.zarr"))
    vscr("cam", str(work / "data"), "--tags", str(work / "data" / "tags.csv"), "--every", "4", "--epochs", "1", "--fit-frames", "4", "-o", str(work / "cam.zarr"))
    report: dict = {"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(), "frame_size": [320, 426], "shapes": {}}
    reduced = autocast_dtype("cpu")
    for name, overrides in (("cpu_preset", {"batch_size": 8, "crop": 96}), ("paper", {"batch_size": 10, "crop": 224})):
        config = make_config("paper", {"backbone": "tf_efficientnet_lite0", "motion": "flow", **overrides})
        with open_training_inputs(str(work / "edges.zarr"), str(work / "cam.zarr"), None, None, 1.0) as data:
            (work / name).mkdir()
            frames = build_frame_cache(data, config, work / name)
            for label, dtype in (("fp32", None), (str(reduced).removeprefix("torch."), reduced)):
                if label == "None":
                    continue
                report["shapes"].setdefault(name, {})[label] = time_steps(data, frames, config, dtype, args.steps)
    report["training_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    model = work / "model"
    vscr("train", "--edges", str(work / "edges.zarr"), "--cam", str(work / "cam.zarr"), "-o", str(model), "--preset", "cpu", "--iterations", "2")
    usage = run_measured([sys.executable, "-m", "vscr_cli", "-q", "predict", str(work / "data"), "-m", str(model), "--max-frames", "4", "-o", str(work / "pred.zarr")])
    report["predict"] = {
        "frames": 8 * 4,
        "frames_per_second": 8 * 4 / usage["wall_seconds"],
        "peak_rss_mib": usage["peak_rss_mib"],
        "note": "whole command: start-up, model loading, decoding, optical flow for the motion clip and inference",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
