"""Grad-CAM++ under bf16 autocast against fp32 (decision record 0030): the pseudo-label rows of the
davis benchmark and of the demo's synthetic data, each side from the same fitted classifier, and
the time of each ``vscr cam`` run.

    python bench/cam_precision.py [--work build/davis] [--out bench/results/cam_precision.json]

davis: the stores of bench/davis.py (all 12 sequences, davis-dev, and davis-more with the
davis-dev classifier; each with and without ``--crf``) made with the defaults (``--precision
auto``, which fits the classifiers) and again with ``--precision fp32`` and ``--precision bf16``,
reusing them. synthetic: ``vscr synth demo`` as the small demo draws it (seeds 0, 1, 2), Stage I
of its training frames and of its test split given tags, at each precision, from the classifier
fitted on its training split. Needs a CPU with native bf16 (avx512_bf16 or AMX): elsewhere
``--precision bf16`` is refused and ``auto`` is fp32.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from davis import Runner, cam_rows, layout, score, stores  # beside this script
from machine import machine_info

from vscr_cli.schemas import PSEUDO
from vscr_cli.settings.demo import DEMO_CLASSES, SIZES, Size
from vscr_cli.store import open_store

REPO = Path(__file__).resolve().parents[1]
PRECISIONS = ("fp32", "bf16")


class TimedRunner(Runner):
    """A Runner that records the seconds of each command it runs, by product (its folder and name:
    every synthetic draw has a ``tags.csv``)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: dict[str, float] = {}

    def ensure(self, product: Path, *args: object) -> Path:
        started, existed = time.perf_counter(), product.exists()
        made = super().ensure(product, *args)
        if not existed:
            self.seconds[f"{product.parent.name}/{product.name}"] = round(time.perf_counter() - started, 1)
        return made


def davis_rows(runner: TimedRunner, work: Path) -> tuple[dict[str, dict], dict[str, float]]:
    """Stage I's rows of the davis benchmark at each precision (the classifiers fitted by the
    defaults' run), and the percentage of pseudo-label pixels that differ between them, per store."""
    data = layout(work)
    stores(runner, work, data, [], ["all", "dev"])  # fits the classifiers as the defaults do
    made = {precision: stores(runner, work, data, ["--precision", precision], ["all", "dev"]) for precision in PRECISIONS}
    rows = {precision: cam_rows(runner, data, made[precision], ["all", "dev"]) for precision in PRECISIONS}
    return rows, {key: changed_pixels(*(made[precision][key] for precision in PRECISIONS)) for key in made[PRECISIONS[0]] if key.startswith("cam-")}


def changed_pixels(first: Path, second: Path) -> float:
    """The percentage of pseudo-label pixels that differ between two cam stores of the same frames."""
    changed = total = 0
    with open_store(first, "cam") as one, open_store(second, "cam") as other:
        for video in one.videos:
            labels_one, labels_other = one.read(video, PSEUDO), other.read(video, PSEUDO)
            changed, total = changed + int((labels_one != labels_other).sum()), total + labels_one.size
    return round(100 * changed / total, 3)


def synthetic_rows(runner: TimedRunner, work: Path, seed: int) -> dict[str, dict]:
    """Stage I's rows on one draw of the demo's synthetic data at each precision."""
    size = SIZES[Size.small]
    synth = work / f"synth-s{seed}"
    runner.ensure(synth / "tags.csv", "synth", synth, "--videos", size.videos, "--frames", size.frames, "--annotated", size.annotated, "--height", size.height, "--width", size.width, "--classes", DEMO_CLASSES, "--seed", seed, "--dense")
    tags = ("--tags", synth / "tags.csv", "--classifier", work / f"synth-s{seed}.classifier")
    fit = ("--epochs", size.epochs, "--fit-frames", size.fit_frames, "--seed", seed)
    runner.ensure(work / f"synth-s{seed}-train.zarr", "cam", synth, "--split", "train", "--every", size.every, *tags, *fit, "-o", work / f"synth-s{seed}-train.zarr")
    rows: dict[str, dict] = {}
    for precision in PRECISIONS:
        for split, frames in (("train", ("--every", size.every)), ("test", ("--annotated-only",))):
            store = work / f"synth-s{seed}-{split}-{precision}.zarr"
            runner.ensure(store, "cam", synth, "--split", split, *frames, *tags, "--precision", precision, "-o", store)
            rows.setdefault(precision, {})[f"CAM, {split}, given tags"] = score(runner, store, synth)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "davis")
    parser.add_argument("--synthetic-work", type=Path, default=REPO / "build" / "cam-precision")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="draws of the synthetic data")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cam_precision.json")
    args = parser.parse_args()
    runner = TimedRunner()
    args.synthetic_work.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    record: dict = {"machine": machine_info(), "load_average_before": [round(value, 2) for value in os.getloadavg()]}
    record["davis"], record["davis_pseudo_pixels_changed_percent"] = davis_rows(runner, args.work)
    record["synthetic"] = {str(seed): synthetic_rows(runner, args.synthetic_work, seed) for seed in args.seeds}
    record["load_average_after"] = [round(value, 2) for value in os.getloadavg()]
    record["seconds"] = {**previous.get("seconds", {}), **runner.seconds}  # products made by an earlier run keep its times
    record["commands"] = runner.commands
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    for precision in PRECISIONS:
        print(precision, json.dumps(record["davis"][precision]))


if __name__ == "__main__":
    main()
