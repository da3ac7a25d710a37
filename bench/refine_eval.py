"""Does SPML's refine-and-retrain (vscr refine) improve on the jointly trained head? Measured on
finished `vscr demo` folders (one per seed), against the demo's own rows.

    python bench/refine_eval.py build/demo-s0 build/demo-s1 build/demo-s2 [--out bench/results/refine.json]

For each demo folder: `vscr refine` of its model on its edges and cam stores (into
WORK/refined), then the demo's three VSCR rows again with the refined model, read out by its
retrained softmax head and by k-NN votes of its prototype bank: the training frames with their
tags (against the pseudo-labels the network learnt from: the transductive row), the test split
with its tags, and the test split without tags. Every row is scored as the demo scores it.
Prints and writes per-seed scores and mean +- standard deviation over the folders.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROWS = {  # name -> (predict options, score options): the demo's VSCR rows
    "train": (["--split", "train", "--every", "2", "--tags", "{synth}/tags.csv"], ["--predicted-only"]),
    "test-tags": (["--split", "test", "--annotated-only", "--tags", "{synth}/tags.csv"], []),
    "test": (["--split", "test", "--annotated-only"], []),
}
DEMO_ROWS = {"cam-train": "CAM (train)", "pred-train": "VSCR (train)", "cam": "CAM (test, tags)", "pred-tags": "VSCR (test, tags)", "pred": "VSCR (test)", "aligned": "VSCR + align (test)"}
METRICS = ("actor_action", "actor", "action")


def vscr(*args: object) -> None:
    command = [sys.executable, "-m", "vscr_cli", "-q", *map(str, args)]
    print("$ vscr", " ".join(map(str, args)), file=sys.stderr, flush=True)
    subprocess.run(command, check=True)


def numbers(score_file: Path) -> dict[str, float]:
    scores = json.loads(score_file.read_text())["scores"]
    return {metric: 100 * scores[metric]["miou"] for metric in METRICS} | {"fg_iou": 100 * scores["fg_iou"]}


def evaluate(work: Path, refine_options: list[str]) -> dict[str, dict[str, float]]:
    """Scores of one demo folder: its own rows and the refined model's."""
    synth, refined = work / "synth", work / "refined"
    rows = {DEMO_ROWS[name]: numbers(work / f"score-{name}.json") for name in DEMO_ROWS}
    if not (refined / "config.json").exists():
        vscr("refine", "--edges", work / "edges.zarr", "--cam", work / "cam.zarr", "-m", work / "model", "-o", refined, *refine_options)
    for readout in ("softmax", "knn"):
        for name, (predict_options, score_options) in ROWS.items():
            store, score = refined / f"pred-{name}-{readout}.zarr", refined / f"score-{name}-{readout}.json"
            if not score.exists():
                vscr("predict", synth, *(o.format(synth=synth) for o in predict_options), "-m", refined, "--readout", readout, "-o", store, "--overwrite")
                vscr("score", store, "--gt", synth, "--json", score, *score_options)
            rows[f"refined {readout} ({name})"] = numbers(score)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("demos", nargs="+", type=Path, help="finished vscr demo folders (one per seed)")
    parser.add_argument("--refine-options", default="", help="extra vscr refine options, quoted")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "refine.json")
    args = parser.parse_args()
    per_seed = {str(work): evaluate(work, args.refine_options.split()) for work in args.demos}
    rows = next(iter(per_seed.values())).keys()
    summary = {}
    for row in rows:
        summary[row] = {}
        for metric in (*METRICS, "fg_iou"):
            values = [seed[row][metric] for seed in per_seed.values()]
            summary[row][metric] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"demos": per_seed, "mean_std": summary, "refine_options": args.refine_options}, indent=2) + "\n")
    print("| row | actor-action | actor | action | fg IoU |\n|---|---|---|---|---|")
    for row, metrics in summary.items():
        print(f"| {row} | " + " | ".join(f"{m['mean']:.1f} ± {m['std']:.1f}" for m in metrics.values()) + " |")


if __name__ == "__main__":
    main()
