"""Where a CPU-preset training step and `vscr predict` spend their time: cProfile's top functions
(by own time), before (flow recomputed per clip) and after (flow once per frame pair).

    python bench/profile_train.py [--steps 8] [--top 10] [--work DIR] [--out bench/results/profile_train.json]

Uses bench_train.py's dataset (8 synthetic videos of 16 frames at 320x426) and its two sample
readers; the training steps run at the CPU preset's shape in fp32 (data, forward, objective,
backward, update), prediction is the whole `vscr predict` command on every frame, in process.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench_train import SHAPES, Stepper, StoreReads, make_dataset, per_clip_stack, predict_args  # beside this script
from vscr_cli.cli import run
from vscr_cli.core.flow import PairFlows
from vscr_cli.stages.runner import per_process
from vscr_cli.settings.train import resolve
from vscr_cli.stages.train import FrameCache, SampleReader, build_frame_cache, open_training_inputs


def top_functions(work: Callable[[], object], top: int) -> dict:
    """Profile ``work()``: total seconds and the ``top`` functions by own time (seconds, share)."""
    profile = cProfile.Profile()
    profile.runcall(work)
    stats = pstats.Stats(profile)
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][2])[:top]  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    return {
        "seconds": total,
        "top": [{"function": f"{Path(file).name}:{line}({name})" if line else name, "seconds": own, "share": own / total} for (file, line, name), (_, _, own, _, _) in rows],
    }


def predicting(work: Path, per_clip: bool) -> Callable[[], None]:
    """`vscr predict` of the dataset in ``work``, in this process (flow per clip when ``per_clip``)."""
    def command() -> None:
        per_process.cache_clear()  # each run loads its model, as the command does
        original = PairFlows.stack
        PairFlows.stack = per_clip_stack if per_clip else original  # type: ignore[method-assign]
        try:
            assert run(predict_args(work)) == 0
        finally:
            PairFlows.stack = original  # type: ignore[method-assign]

    return command


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--work", type=Path, help="a folder bench_train.make_dataset filled before (default: make one)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "profile_train.json"))
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vscr-profile-train-"))
    if args.work is None:
        make_dataset(work)
    config = resolve("paper", flags=SHAPES["cpu_preset"])
    report: dict = {"training_steps": args.steps, "train": {}, "predict": {}}
    with open_training_inputs(str(work / "edges.zarr"), str(work / "cam.zarr"), None, None, 1.0) as data:
        cache = build_frame_cache(data, config, Path(tempfile.mkdtemp(prefix="vscr-profile-cache-")))
        readers = {"before": StoreReads(data, FrameCache(cache.rgb, None), config, config.architecture.mean_std), "after": SampleReader(data, cache, config, config.architecture.mean_std)}
        for name, reader in readers.items():
            stepper = Stepper(config, None)
            stepper.step(reader, 0)  # warm-up (loads the arrays the reader keeps)
            report["train"][name] = top_functions(lambda: [stepper.step(reader, i) for i in range(1, args.steps + 1)], args.top)
    for name, per_clip in (("before", True), ("after", False)):
        report["predict"][name] = top_functions(predicting(work, per_clip), args.top)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
