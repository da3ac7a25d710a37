"""Throughput of `vscr edges` in one process against Dask LocalClusters of 1 and 2 worker processes.

    python bench/bench_scale.py [--videos 8] [--frames 16] [--height 160] [--rounds 2] [--out bench/results/scale.json]

Synthesises a dataset, then times the whole command (start-up, HED, UCM, writing the store)
for each configuration and keeps each one's fastest round:

- ``single_2_threads``: one process, torch on 2 threads (the default on a 2-core machine);
- ``single_1_thread``: one process, OMP_NUM_THREADS=1;
- ``local_1`` / ``local_2``: ``--scheduler local:N``, N worker processes of one thread each
  (Dask sets OMP_NUM_THREADS=1 in its workers, so N workers use N cores).

Reported: wall seconds, frames per second, the 1-minute load average before the run, and the
scaling efficiency fps(local_2) / (2 x fps(local_1)). The Dask stores are compared array for
array with the single-process ones of 1 and of 2 torch threads (``identical_stores``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.store import open_store

REPO = Path(__file__).resolve().parents[1]
CONFIGURATIONS = {
    "single_2_threads": ([], {"OMP_NUM_THREADS": "2"}),
    "single_1_thread": ([], {"OMP_NUM_THREADS": "1"}),
    "local_1": (["--scheduler", "local:1"], {}),
    "local_2": (["--scheduler", "local:2"], {}),
}


def run_edges(root: Path, out: Path, extra: list[str], environ: dict[str, str]) -> dict[str, float]:
    """One `vscr edges` run as a child process: wall seconds and the load average before it."""
    load = os.getloadavg()[0]
    start = time.perf_counter()
    command = [sys.executable, "-m", "vscr_cli", "-q", "edges", str(root), "-o", str(out), "--overwrite", *extra]
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **environ})
    return {"seconds": time.perf_counter() - start, "load_average_1min": load}


def same_store(a: Path, b: Path) -> bool:
    with open_store(a) as first, open_store(b) as second:
        return first.videos == second.videos and all(
            np.array_equal(first.read(v, name), second.read(v, name)) for v in first.videos for name in first.arrays(v)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=160)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vscr-bench-scale-") as folder:
        root = Path(folder) / "synth"
        width = args.height * 4 // 3 // 2 * 2
        synthesize(root, SynthConfig(videos=args.videos, frames=args.frames, height=args.height, width=width, annotated=2, seed=5))
        frames = args.videos * args.frames
        results: dict[str, dict] = {}
        for name, (extra, environ) in CONFIGURATIONS.items():
            rounds = [run_edges(root, Path(folder) / f"{name}.zarr", extra, environ) for _ in range(args.rounds)]
            best = min(rounds, key=lambda r: r["seconds"])
            results[name] = {**best, "frames_per_second": frames / best["seconds"], "seconds_each_round": [r["seconds"] for r in rounds]}
            print(name, f"{results[name]['frames_per_second']:.2f} frames/s", file=sys.stderr)
        identical = {
            f"{name}_vs_{reference}": same_store(Path(folder) / f"{reference}.zarr", Path(folder) / f"{name}.zarr")
            for reference in ("single_1_thread", "single_2_threads")
            for name in ("local_1", "local_2")
        }
    fps = {name: r["frames_per_second"] for name, r in results.items()}
    report = {
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "dataset": {"videos": args.videos, "frames_per_video": args.frames, "height": args.height, "width": width, "frames": frames},
        "precision": "auto (the command's default)",
        "rounds": args.rounds,
        "runs": results,
        "speedup_local_2_vs_single_2_threads": fps["local_2"] / fps["single_2_threads"],
        "speedup_local_2_vs_local_1": fps["local_2"] / fps["local_1"],
        "efficiency_local_2": fps["local_2"] / (2 * fps["local_1"]),
        "identical_stores": identical,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
