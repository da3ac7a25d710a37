"""Time refused commands (issue #35 case 16, issue #39: under 1.5 s on 2 cores).

    .venv/bin/python bench/refusals.py [--checkout /path/to/another/worktree ...] [--repeats 5]

writes bench/results/refusals.json. Each case is a command that must be refused (an existing
output without --overwrite, a missing input, a missing parent folder), run as a real process
(``python -m vscr_cli ...``) in a working folder laid out as tests/test_refusals.py lays it out,
and timed from start to exit; the median of ``--repeats`` runs is reported, with every run.

Every ``--checkout`` (e.g. a git worktree of an earlier commit) is timed in the same run beside
this one, its code put first on PYTHONPATH: cases and checkouts are interleaved round by round, so
load from other processes on the machine skews the comparison less. The CPU (lscpu's "Model
name"), the cores this process may use and the load average before and after are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

from machine import commit, cpu_model, timed_vscr  # bench/machine.py (this script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "refusals.json"
TARGET_SECONDS = 1.5
#: name -> the vscr arguments of a refused run (see make_folder for what the folder holds).
CASES = {
    "edges: existing output": ("edges", "clip.mp4", "-o", "out.zarr"),
    "edges: missing source": ("edges", "missing.mp4", "-o", "new.zarr"),
    "edges: missing parent folder": ("edges", "clip.mp4", "-o", "nowhere/out.zarr"),
    "cam: existing output": ("cam", "clip.mp4", "--tags", "tags.csv", "-o", "out.zarr"),
    "cam: missing tags": ("cam", "clip.mp4", "--tags", "missing.csv", "-o", "new.zarr"),
    "train: existing output": ("train", "--edges", "out.zarr", "--cam", "out.zarr", "-o", "model"),
    "train: missing store": ("train", "--edges", "missing.zarr", "--cam", "out.zarr", "-o", "new"),
    "train: missing config": ("train", "--edges", "out.zarr", "--cam", "out.zarr", "--config", "missing.toml", "-o", "new"),
    "refine: existing output": ("refine", "--edges", "out.zarr", "--cam", "out.zarr", "-m", "trained", "-o", "model"),
    "refine: missing model": ("refine", "--edges", "out.zarr", "--cam", "out.zarr", "-m", "missing", "-o", "new"),
    "predict: existing output": ("predict", "clip.mp4", "-m", "trained", "-o", "out.zarr"),
    "predict: missing model": ("predict", "clip.mp4", "-m", "missing", "-o", "new.zarr"),
    "demo: existing output": ("demo", "vscr-demo"),
    "info: missing store (a light command, for reference)": ("info", "missing.zarr"),
}


def make_folder(folder: Path) -> None:
    """A video file (only its existence is checked), existing outputs, a model record and a tags CSV."""
    (folder / "clip.mp4").write_bytes(b"")
    for existing in ("out.zarr", "model", "vscr-demo"):
        (folder / existing).mkdir()
        (folder / existing / "something").write_text("not vscr's\n")
    (folder / "trained").mkdir()
    (folder / "trained" / "config.json").write_text("{}")
    (folder / "tags.csv").write_text("video,tags\nclip,15\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, action="append", default=[], help="Another checkout to time beside this one (repeatable).")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    checkouts = [REPO, *(path.resolve() for path in args.checkout)]
    runs: dict[Path, dict[str, list[float]]] = {checkout: {name: [] for name in CASES} for checkout in checkouts}
    outcomes: dict[Path, dict[str, tuple[int, str]]] = {checkout: {} for checkout in checkouts}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vscr-refusals-") as work:
        folder = Path(work)
        make_folder(folder)
        for round_number in range(args.repeats):
            for name, case in CASES.items():
                for checkout in checkouts:
                    seconds, code, line = timed_vscr(checkout, folder, case)
                    runs[checkout][name].append(round(seconds, 3))
                    outcomes[checkout][name] = (code, line)
            print(f"round {round_number + 1}/{args.repeats} done", file=sys.stderr)
    record = {
        "cpu": cpu_model(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "repeats": args.repeats,
        "target_seconds": TARGET_SECONDS,
        "checkouts": {
            str(checkout): {
                "commit": commit(checkout),
                "cases": {
                    name: {"median_s": round(statistics.median(times), 3), "runs_s": times, "exit": outcomes[checkout][name][0], "error": outcomes[checkout][name][1]}
                    for name, times in runs[checkout].items()
                },
            }
            for checkout in checkouts
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['cpu']}, {record['usable_cores']} cores, load {record['load_average_before'][0]} -> {record['load_average_after'][0]}")
    for name in CASES:
        medians = "  ".join(f"{record['checkouts'][str(c)]['commit']}: {record['checkouts'][str(c)]['cases'][name]['median_s']:.2f} s" for c in checkouts)
        print(f"{name:55} {medians}")


if __name__ == "__main__":
    main()
