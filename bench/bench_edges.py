"""Throughput of the edge stage at A2D resolution on this machine, split into decode / HED / UCM.

    python bench/bench_edges.py [--frames 24] [--out bench/results/edges.json]

Synthesises two 320x426 clips (A2D's clip height), then times, per frame: decoding (PyAV),
HED in exact fp32 and with the default reduced precision (where the CPU or GPU runs it
natively), and the UCM hierarchy + cut. Also runs the whole `vscr edges` command on the clips
and reports its frames per second and peak resident memory (ru_maxrss of that process).
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

from vscr_cli import weights
from vscr_cli.core.precision import autocast_dtype
from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.sources import FrameSelection, discover
from vscr_cli.stages.edges import DEFAULT_THRESHOLD, EdgeDetector, edge_segments


def per_frame(seconds: float, frames: int) -> dict[str, float]:
    return {"seconds_per_frame": seconds / frames, "frames_per_second": frames / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "edges.json"))
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="vscr-bench-"))
    synthesize(work / "data", SynthConfig(videos=2, frames=args.frames, height=320, width=426, empty_fraction=0, multi_fraction=0))
    videos = discover([work / "data"])
    report: dict = {"machine": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(), "device": str(device), "frame_size": [320, 426]}

    start = time.perf_counter()
    frames = np.stack([f for video in videos for _, f in video.read(video.select(FrameSelection()))])
    report["decode"] = per_frame(time.perf_counter() - start, len(frames))

    state = weights.load_state_dict("hed-bsds500")
    reduced = autocast_dtype(device)
    edges = {}
    for name, dtype in (("fp32", None), ("reduced", reduced)):
        if name == "reduced" and dtype is None:
            continue
        detector = EdgeDetector(state, device, dtype)
        detector(frames[: args.batch_size])  # warm-up
        start = time.perf_counter()
        edges[name] = np.concatenate([detector(frames[i : i + args.batch_size]) for i in range(0, len(frames), args.batch_size)])
        report[f"hed_{name}"] = {**per_frame(time.perf_counter() - start, len(frames)), "dtype": str(dtype or torch.float32)}
    if "reduced" in edges:
        difference = np.abs(edges["reduced"] - edges["fp32"])
        exact = np.round(edges["fp32"] * 255).astype(np.uint8)
        fast = np.round(edges["reduced"] * 255).astype(np.uint8)
        same = np.mean([np.mean(edge_segments(a, DEFAULT_THRESHOLD) == edge_segments(b, DEFAULT_THRESHOLD)) for a, b in zip(exact, fast)])
        report["reduced_vs_fp32"] = {"mean_abs": float(difference.mean()), "max_abs": float(difference.max()), "same_segment_pixels": float(same)}
        report["hed_speedup_reduced_over_fp32"] = report["hed_reduced"]["frames_per_second"] / report["hed_fp32"]["frames_per_second"]

    quantised = np.round(edges["fp32"] * 255).astype(np.uint8)
    start = time.perf_counter()
    for edge in quantised:
        edge_segments(edge, DEFAULT_THRESHOLD)
    report["ucm_and_cut"] = per_frame(time.perf_counter() - start, len(quantised))

    command = [sys.executable, "-m", "vscr_cli", "-q", "edges", str(work / "data"), "-o", str(work / "edges.zarr"), "--batch-size", str(args.batch_size)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - start
    report["vscr_edges_command"] = {
        **per_frame(elapsed, len(frames)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "command": " ".join(command[2:]),
        "note": "includes interpreter start-up and weight loading",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
