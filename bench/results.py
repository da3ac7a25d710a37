"""Reproduce the tables of docs/RESULTS.md: every run is the `vscr` commands it prints.

Synthetic benchmark: `vscr demo WORK --size small` (its stores, its full model and the CAM
baseline on the test split), then the ablations of the paper's Tables 3-5 trained on the same
edges and cam stores with the same settings apart from the option named, each predicted on the
test split and scored on its annotated frames (the A2D protocol). davis-dev: edges and cam stores (every
5th frame at 240 px), the CAM baseline, a model trained on them, its prediction, all scored
against the full-size masks. A run whose score file exists is not repeated (delete it to redo).

    python bench/results.py --out bench/results/results.json            # everything (about 2 hours on 2 cores)
    python bench/results.py --only synth-full synth-no-motion            # some rows
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vscr_cli.pipeline import SIZES, Size

REPO = Path(__file__).resolve().parents[1]
SIZE = SIZES[Size.small]
DAVIS = REPO.parent / "shared" / "data" / "davis-dev"

#: Synthetic rows: name -> the training options that differ from the full model (Tables 3-5).
ABLATIONS = {
    "no-edge": ["--no-edge"],
    "no-tag": ["--no-tag"],
    "no-motion": ["--motion", "none"],
    "no-unlabeled": ["--no-unlabeled"],
    "labeled-25": ["--labeled-fraction", "0.25"],
    "labeled-50": ["--labeled-fraction", "0.5"],
    "labeled-75": ["--labeled-fraction", "0.75"],
    "k-4-8-4": ["--k-cam", "4", "--k-edge", "8", "--k-tag", "4"],  # Table 4 rows: (k_c, k_e, k_t)
    "k-8-20-8": ["--k-cam", "8", "--k-edge", "20", "--k-tag", "8"],
    "w-0.1-0.1-0.1": ["--w-cam", "0.1", "--w-edge", "0.1", "--w-tag", "0.1"],  # (a_c, a_e, a_t)
    "w-0.5-0.3-0.1": ["--w-cam", "0.5", "--w-edge", "0.3", "--w-tag", "0.1"],
    "motion-vector": ["--motion-vector"],
    "fp32": ["--precision", "fp32"],
    "iterations-1500": ["--iterations", "1500"],  # the last --iterations wins
}


def vscr(*args: object) -> list[str]:
    return [sys.executable, "-m", "vscr_cli", "-q", *map(str, args)]


def as_text(command: list[str]) -> str:
    """A ``vscr(...)`` command as a user types it in the repository root."""
    return shlex.join(["vscr", *command[3:]]).replace(f"{REPO}/", "").replace(f"{REPO.parent}/", "../")


def run(command: list[str], log: list[str]) -> float:
    """Run one command (its text kept in ``log``); returns its seconds."""
    text = as_text(command)
    print(f"$ {text}", file=sys.stderr, flush=True)
    log.append(text)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return round(time.perf_counter() - start, 1)


def scores(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text())["scores"]
    row = {f"{space}_{metric}": data[space][metric] for space in ("actor_action", "actor", "action") for metric in ("miou", "class_acc", "global_acc")}
    return row | {"fg_iou": data["fg_iou"], "frames": data["frames"]}


def synthetic_rows(work: Path, only: set[str] | None, rows: dict[str, dict], save: Callable[[], None]) -> None:
    """The demo's rows, then each ablation's (saved as each finishes)."""
    (work / "ablations").mkdir(parents=True, exist_ok=True)
    synth = work / "synth"
    if not (work / "demo.json").is_file():
        commands: list[str] = []
        seconds = run(vscr("demo", work, "--size", "small", "--overwrite"), commands)
        (work / "demo.commands.json").write_text(json.dumps({"commands": commands, "seconds": seconds}))
    demo = json.loads((work / "demo.json").read_text())
    demo_commands = json.loads((work / "demo.commands.json").read_text())["commands"] if (work / "demo.commands.json").is_file() else ["vscr demo " + str(work) + " --size small"]
    demo_rows = (("synth-cam-train", "cam-train"), ("synth-full-train", "pred-train"), ("synth-cam", "cam"), ("synth-full-tags", "pred-tags"), ("synth-full", "pred"), ("synth-full-aligned", "aligned"))
    for name, scored in demo_rows:
        rows[name] = {"commands": demo_commands, "scores": scores(work / f"score-{scored}.json")}
    rows["synth-full"]["seconds"] = demo["seconds"]
    save()
    train_common = ["--edges", work / "edges.zarr", "--cam", work / "cam.zarr", "--preset", "cpu", "--iterations", SIZE.iterations, "--crop", SIZE.crop, "--seed", 0]
    for name, options in ABLATIONS.items():
        row = f"synth-{name}"
        if only is not None and row not in only:
            continue
        model, score = work / "ablations" / name, work / "ablations" / f"{name}.score.json"
        commands: list[str] = []
        if not score.is_file():
            seconds = run(vscr("train", *train_common, *options, "-o", model, "--overwrite"), commands)
            run(vscr("predict", synth, "--split", "test", "-m", model, "-o", model / "pred.zarr", "--overwrite"), commands)
            run(vscr("score", model / "pred.zarr", "--gt", synth, "--json", score), commands)
            (score.with_suffix(".commands.json")).write_text(json.dumps({"commands": commands, "train_seconds": seconds}))
        saved = json.loads(score.with_suffix(".commands.json").read_text())
        rows[row] = {"commands": saved["commands"], "train_seconds": saved["train_seconds"], "scores": scores(score)}
        save()


def davis_rows(work: Path) -> dict[str, dict]:
    if not (DAVIS / "tags.csv").is_file():
        print(f"davis-dev not found at {DAVIS}: skipped", file=sys.stderr)
        return {}
    tags = DAVIS / "tags.csv"
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model"
    sample = ["--every", "5", "--height", "240"]
    steps = [
        (work / "edges.zarr", vscr("edges", DAVIS, *sample, "-o", work / "edges.zarr", "--overwrite")),
        (work / "cam.zarr", vscr("cam", DAVIS, "--tags", tags, *sample, "-o", work / "cam.zarr", "--overwrite")),
        (work / "cam.score.json", vscr("score", work / "cam.zarr", "--gt", DAVIS, "--predicted-only", "--resize", "--json", work / "cam.score.json")),
        (model / "model.safetensors", vscr("train", "--edges", work / "edges.zarr", "--cam", work / "cam.zarr", "--preset", "cpu", "--iterations", SIZE.iterations, "--seed", 0, "-o", model, "--overwrite")),
        (work / "pred.zarr", vscr("predict", DAVIS, "--every", "5", "-m", model, "-o", work / "pred.zarr", "--overwrite")),
        (work / "pred.score.json", vscr("score", work / "pred.zarr", "--gt", DAVIS, "--predicted-only", "--resize", "--json", work / "pred.score.json")),
    ]
    commands: list[str] = []
    for product, command in steps:
        if product.exists():
            commands.append(as_text(command))
        else:
            run(command, commands)
    return {"davis-cam": {"commands": commands[:3], "scores": scores(work / "cam.score.json")}, "davis-full": {"commands": commands, "scores": scores(work / "pred.score.json")}}


#: The tables of docs/RESULTS.md: (title, [(row name, label)]).
TABLES = (
    ("Synthetic benchmark: the network against its pseudo-labels", [("synth-cam-train", "CAM (train)"), ("synth-full-train", "VSCR (train)"), ("synth-cam", "CAM (test, tags given)"), ("synth-full-tags", "VSCR (test, tags given)"), ("synth-full", "VSCR (test)"), ("synth-full-aligned", "VSCR + align (test)")]),
    ("Synthetic benchmark (Table 3 ablations)", [("synth-cam", "(a) CAM pseudo-labels, tags given"), ("synth-full", "(b) VSCR, full"), ("synth-full-aligned", "(b) VSCR + align"), ("synth-no-edge", "(c) w/o edge"), ("synth-no-tag", "(c) w/o tag"), ("synth-no-motion", "(c) w/o motion"), ("synth-no-unlabeled", "(c) w/o unlabeled"), ("synth-motion-vector", "motion as one vector per clip"), ("synth-fp32", "fp32 instead of bf16 autocast"), ("synth-iterations-1500", "(b) VSCR, 1500 iterations instead of 600")]),
    ("Concentrations and loss weights (Table 4)", [("synth-full", "k 6/16/8, a 0.3/0.3/0.1 (default)"), ("synth-k-4-8-4", "k_c/k_e/k_t 4/8/4"), ("synth-k-8-20-8", "k_c/k_e/k_t 8/20/8"), ("synth-w-0.1-0.1-0.1", "a_c/a_e/a_t 0.1/0.1/0.1"), ("synth-w-0.5-0.3-0.1", "a_c/a_e/a_t 0.5/0.3/0.1")]),
    ("Pseudo-labeled share (Table 5)", [("synth-labeled-25", "25%"), ("synth-labeled-50", "50%"), ("synth-labeled-75", "75%"), ("synth-full", "100%")]),
    ("davis-dev", [("davis-cam", "(a) CAM pseudo-labels, tags given"), ("davis-full", "(b) VSCR, full")]),
)


def markdown(rows: dict[str, dict]) -> str:
    """The RESULTS.md tables (percentages) of the rows computed so far."""
    columns = ("actor_action_miou", "actor_miou", "action_miou", "actor_action_class_acc", "actor_action_global_acc", "fg_iou")
    header = "| run | actor-action mIoU | actor mIoU | action mIoU | class acc. | global acc. | fg IoU |\n|---|---:|---:|---:|---:|---:|---:|"
    parts = []
    for title, entries in TABLES:
        lines = [f"### {title}", "", header]
        for name, label in entries:
            if name in rows:
                values = rows[name]["scores"]
                lines.append(f"| {label} | " + " | ".join("-" if values[c] is None else f"{100 * values[c]:.1f}" for c in columns) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "results")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "results.json")
    parser.add_argument("--only", nargs="*", help="Rows to (re)compute, e.g. synth-no-motion davis")
    parser.add_argument("--markdown", action="store_true", help="Only print the tables of the rows in --out as markdown.")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())["rows"]))
        return
    only = set(args.only) if args.only else None
    rows = json.loads(args.out.read_text())["rows"] if args.out.is_file() else {}

    def save() -> None:
        args.out.write_text(json.dumps({"size": "small", "iterations": SIZE.iterations, "rows": rows}, indent=2) + "\n")

    if only is None or "davis" in only:
        rows.update(davis_rows(args.work / "davis"))
        save()
    synthetic_rows(args.work / "synth", only, rows, save)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
