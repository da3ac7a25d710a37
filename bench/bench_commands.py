"""Throughput of whole commands on their default path (issue #39), each timed as a user runs it.

    .venv/bin/python bench/bench_commands.py [--checkout DIR ...] [--rounds 2] [--videos 4] [--frames 20]

writes bench/results/commands.json. The cases, each a real ``vscr`` process timed from start to exit
(imports, model loading and writing included):

* ``cam 320x426, classifier reused``: ``vscr cam`` with its default options on --videos synthetic
  videos of --frames frames at A2D's clip size (320x426), the classifier given; frames/s.
* ``predict 320x426``: ``vscr predict`` with its default options (the dense CRF included) on the same
  videos given their tags, with a model trained a few iterations here. Given tags, every frame is
  decoded among background and its video's tag, as a trained model's video decision usually leaves
  it; tag-free, this barely trained model would leave many classes in, and the CRF's cost grows
  with them.
* ``predict 320x426, --crf-height 160``: the same with the CRF at 160 rows given explicitly (the
  default since decision record 0027; the same setting on a checkout from before it).
* ``cam demo data, classifier fitted`` and ``... reused``: ``vscr cam`` on ``vscr demo``'s training
  split with the demo's fitting options; the difference is the classifier's fine-tuning.

The inputs are made once with this checkout's code. Every ``--checkout`` (e.g. a git worktree of the
commit before a change) is timed beside this one in the same run, its code first on PYTHONPATH, the
checkouts interleaved case by case and round by round; each case keeps its fastest round. The CPU
(lscpu's "Model name"), the usable cores and the load averages are recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from machine import commit, machine_info, timed_vscr  # bench/machine.py (this script's folder is on sys.path)

from vscr_cli.settings.demo import DEMO_CLASSES, SIZES, Size

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "commands.json"
#: A2D's clip size (its clips320H videos are 320 rows high, most of them 4:3).
HEIGHT, WIDTH = 320, 426
#: Issue #39's targets.
TARGET_FRAMES_PER_SECOND = 5.0
TARGET_FIT_SECONDS = 60.0


def vscr(folder: Path, *args: object) -> None:
    """Run ``vscr ARGS`` in ``folder`` with this checkout's code; stop on failure."""
    seconds, code, line = timed_vscr(REPO, folder, args)
    if code:
        raise SystemExit(f"vscr {' '.join(map(str, args[:2]))} failed: {line}")
    print(f"made: vscr {args[0]} ({seconds:.0f} s)", file=sys.stderr)


def make_inputs(folder: Path, videos: int, frames: int) -> None:
    """The synthetic videos at 320x426 with a fitted classifier and a briefly trained model, and the
    demo's synthetic set."""
    vscr(folder, "synth", "a2d", "--videos", videos, "--frames", frames, "--height", HEIGHT, "--width", WIDTH, "--annotated", 1, "--empty", 0, "--multi", 0, "--test-fraction", 0, "--seed", 0)
    vscr(folder, "cam", "a2d", "--tags", "a2d/tags.csv", "--every", 4, "--epochs", 1, "--fit-frames", 4, "--classifier", "a2d.classifier", "-o", "cam.zarr")
    vscr(folder, "edges", "a2d", "--every", 4, "-o", "edges.zarr")
    vscr(folder, "train", "--edges", "edges.zarr", "--cam", "cam.zarr", "--iterations", 4, "-o", "model")
    size = SIZES[Size.small]
    vscr(folder, "synth", "demo", "--videos", size.videos, "--frames", size.frames, "--annotated", size.annotated, "--height", size.height, "--width", size.width, "--classes", DEMO_CLASSES, "--seed", 0)


def cases(name: str) -> dict[str, list[str]]:
    """Case name -> the vscr arguments, writing under ``name`` (one output per checkout and round)."""
    size = SIZES[Size.small]
    demo = ["cam", "demo", "--split", "train", "--every", size.every, "--tags", "demo/tags.csv", "--epochs", size.epochs, "--fit-frames", size.fit_frames, "--seed", 0]
    return {
        "cam 320x426, classifier reused": ["cam", "a2d", "--tags", "a2d/tags.csv", "--classifier", "a2d.classifier", "-o", f"{name}-cam.zarr"],
        "predict 320x426": ["predict", "a2d", "--tags", "a2d/tags.csv", "-m", "model", "-o", f"{name}-pred.zarr"],
        "predict 320x426, --crf-height 160": ["predict", "a2d", "--tags", "a2d/tags.csv", "--crf-height", 160, "-m", "model", "-o", f"{name}-pred160.zarr"],
        "cam demo data, classifier fitted": [*demo, "--classifier", f"{name}-demo.classifier", "-o", f"{name}-demo-fit.zarr"],
        "cam demo data, classifier reused": [*demo, "--classifier", f"{name}-demo.classifier", "-o", f"{name}-demo-reuse.zarr"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, action="append", default=[], help="Another checkout to time beside this one (repeatable).")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--cases", nargs="+", choices=list(cases("x")), default=list(cases("x")), help="which cases to time (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    checkouts = [REPO, *(path.resolve() for path in args.checkout)]
    seconds: dict[Path, dict[str, list[float]]] = {checkout: {} for checkout in checkouts}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="vscr-commands-") as work:
        folder = Path(work)
        make_inputs(folder, args.videos, args.frames)
        for round_number in range(args.rounds):
            for case in args.cases:
                for index, checkout in enumerate(checkouts):
                    command = cases(f"r{round_number}-c{index}")[case]
                    elapsed, code, line = timed_vscr(checkout, folder, ["-q", *command])
                    if code:
                        raise SystemExit(f"{checkout}: {case}: {line}")
                    seconds[checkout].setdefault(case, []).append(round(elapsed, 2))
                    print(f"round {round_number + 1}, {commit(checkout)}: {case}: {elapsed:.1f} s", file=sys.stderr)
    frames = args.videos * args.frames
    record = {
        "machine": machine_info(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average_before": [round(value, 2) for value in load_before],
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "frame_size": [HEIGHT, WIDTH],
        "frames": frames,
        "rounds": args.rounds,
        "targets": {"frames_per_second": TARGET_FRAMES_PER_SECOND, "fit_seconds": TARGET_FIT_SECONDS},
        "checkouts": {str(checkout): summary(checkout, seconds[checkout], frames) for checkout in checkouts},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['machine']['cpu']}, {record['usable_cores']} cores, load {record['load_average_before'][0]} -> {record['load_average_after'][0]}")
    for checkout in checkouts:
        result = record["checkouts"][str(checkout)]
        print(f"{result['commit']}: cam {result['cam_frames_per_second']} frames/s, predict {result['predict_frames_per_second']} frames/s, classifier fit {result['fit_seconds']} s")


def summary(checkout: Path, runs: dict[str, list[float]], frames: int) -> dict:
    """A checkout's fastest round per case, its frames/s and the classifier's fit time."""
    best = {case: min(times) for case, times in runs.items()}
    fit, reuse = (best.get(f"cam demo data, classifier {how}") for how in ("fitted", "reused"))

    def per_second(case: str) -> float | None:
        return round(frames / best[case], 2) if case in best else None

    return {
        "commit": commit(checkout),
        "cases": {case: {"best_s": best[case], "runs_s": times} for case, times in runs.items()},
        "cam_frames_per_second": per_second("cam 320x426, classifier reused"),
        "predict_frames_per_second": per_second("predict 320x426"),
        "predict_crf_160_frames_per_second": per_second("predict 320x426, --crf-height 160"),
        "fit_seconds": round(fit - reuse, 1) if fit is not None and reuse is not None else None,
    }


if __name__ == "__main__":
    main()
