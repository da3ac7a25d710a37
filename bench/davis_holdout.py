"""Unseen davis videos with more training videos (issue #36's inductive row): does the network on a
video it never saw get better when it learns from more videos?

``bench/davis.py``'s inductive rows train on the 7 davis-dev sequences and predict the 5 davis-more
ones. Here each davis-more sequence is held out once, in two folds (:data:`FOLDS`): each fold trains
Stage I (its own classifier, ``vscr cam``) and the network (``vscr train``, the README's defaults)
on davis-dev and the other davis-more sequences, and predicts its held-out ones. Both folds' scores
are pooled (their confusion matrices summed: the same frames and pixels as davis.py's "more
(inductive)" rows) beside the davis-dev-only models of ``bench/davis.py``'s ``defaults`` variant on
the same frames, every row scored the same way. Every 5th frame at 320 px, as davis.py.

    python bench/davis.py --seeds 0 1 2                  # first: the davis-dev models and Stage I
    python bench/davis_holdout.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

import numpy as np

from davis import EVERY, HEIGHT, REPO, SETS, Runner, frame_options  # beside this script (its folder is on sys.path)
from machine import machine_info
from vscr_cli.stages.score import SpaceScores

#: Held-out davis-more sequences per fold; each fold trains on davis-dev and the other folds' sequences.
#: The two ``adult-none`` videos (breakdance, scooter-black) are in different folds, so each is
#: predicted by a model that saw the other.
FOLDS = {"fold-a": ("breakdance", "drift-chicane"), "fold-b": ("goat", "paragliding-launch", "scooter-black")}
#: The network's rows: (row, store name, given the tags, with the CRF).
PREDICTIONS = (("VSCR, CRF", "tagfree", False, True), ("VSCR, given tags, CRF", "tags", True, True), ("VSCR, given tags", "tags-nocrf", True, False))
CAMS = (("CAM, given tags", ()), ("CAM, given tags, CRF", ("--crf",)))
SEVEN, MORE = "7 training videos (davis-dev)", "9-10 training videos (davis-dev + the other davis-more)"


def tag_rows(folder: Path) -> dict[str, str]:
    """A DAVIS-style folder's tags.csv rows by video."""
    return {line.split(",", 1)[0]: line for line in (folder / "tags.csv").read_text().splitlines()[1:]}


def fold_layout(work: Path) -> dict[str, dict[str, Path]]:
    """Per fold a ``train`` and a ``test`` folder of links to the sequences, each with its tags.csv."""
    rows = {**tag_rows(SETS["dev"]), **tag_rows(SETS["more"])}
    sequences = {path.name: path for folder in SETS.values() for path in sorted(folder.iterdir()) if path.is_dir()}
    folders = {}
    for fold, held in FOLDS.items():
        parts = {"train": [name for name in sequences if name not in held], "test": list(held)}
        folders[fold] = {}
        for part, names in parts.items():
            folder = work / fold / part
            folder.mkdir(parents=True, exist_ok=True)
            for name in names:
                link = folder / name
                if not link.is_symlink():
                    link.symlink_to(sequences[name].resolve())
            (folder / "tags.csv").write_text("\n".join(["video,tags", *(rows[name] for name in names)]) + "\n")
            folders[fold][part] = folder
    return folders


def scored(runner: Runner, store: Path, gt: Path) -> dict:
    """``vscr score``'s JSON report of ``store`` against ``gt`` (on the frames the store holds)."""
    report = runner.ensure(store.with_suffix(".score.json"), "score", store, "--gt", gt, "--predicted-only", "--resize", "--json", store.with_suffix(".score.json"))
    return json.loads(report.read_text())


def pooled(reports: list[dict]) -> dict[str, float]:
    """Actor-action mIoU and foreground IoU (percent) of several score reports' frames together: their
    actor-action confusion matrices summed (the classes' predictions outside the space included)."""
    spaces = [report["scores"]["actor_action"] for report in reports]
    classes = tuple(spaces[0]["classes"])
    confusion = sum(np.hstack([np.array(space["confusion"]), np.array(space["invalid_predictions"])[:, None]]) for space in spaces)
    actor_action = SpaceScores.from_confusion(classes, confusion)
    intersection = confusion[1:, 1 : len(classes)].sum()
    union = confusion[1:].sum() + confusion[:, 1 : len(classes)].sum() - intersection
    return {"actor_action.miou": round(100 * actor_action.miou, 2), "fg_iou": round(100 * float(intersection / union), 2)}


def fold_rows(runner: Runner, work: Path, folders: dict[str, dict[str, Path]], seed: int) -> dict[str, dict[str, float]]:
    """The rows of the models trained on each fold's training videos (seed ``seed``; Stage I once per fold)."""
    reports: dict[str, list[dict]] = {}
    frames = frame_options(EVERY)
    for fold, parts in folders.items():
        train, test, base = parts["train"], parts["test"], work / fold
        edges = runner.ensure(base / "edges.zarr", "edges", train, *frames, "-o", base / "edges.zarr")
        classifier = base / "cam.classifier"
        cam = runner.ensure(base / "cam.zarr", "cam", train, *frames, "--tags", train / "tags.csv", "--classifier", classifier, "-o", base / "cam.zarr")
        for row, options in CAMS:
            store = base / f"cam-test{''.join(options)}.zarr"
            runner.ensure(store, "cam", test, *frames, "--tags", test / "tags.csv", "--classifier", classifier, *options, "-o", store)
            reports.setdefault(row, []).append(scored(runner, store, test))
        (base / f"s{seed}").mkdir(exist_ok=True)
        model = base / f"s{seed}" / "model"
        runner.ensure(model, "train", train, "--edges", edges, "--cam", cam, "--seed", seed, "--no-tensorboard", "-o", model)
        for row, name, tagged, crf in PREDICTIONS:
            store = base / f"s{seed}" / f"pred-{name}.zarr"
            tags = ("--tags", test / "tags.csv") if tagged else ()
            runner.ensure(store, "predict", test, *frames[:2], "--crf" if crf else "--no-crf", *tags, "-m", model, "-o", store)
            reports.setdefault(row, []).append(scored(runner, store, test))
    return {f"{MORE}: {row}": pooled(parts) for row, parts in reports.items()}


def dev_rows(runner: Runner, davis_work: Path, seed: int) -> dict[str, dict[str, float]]:
    """The same rows of ``bench/davis.py``'s davis-dev models (variant ``defaults``) and Stage I (the
    davis-dev classifier) on all of davis-more; the no-CRF prediction given tags is made here."""
    more, frames = SETS["more"], frame_options(EVERY)
    folder, tags = davis_work / "defaults" / f"s{seed}", ("--tags", more / "tags.csv")
    stores = {
        "CAM, given tags": davis_work / "cam-more.zarr",
        "CAM, given tags, CRF": davis_work / "cam-more-crf.zarr",
        "VSCR, CRF": folder / "pred-more.zarr",
        "VSCR, given tags, CRF": folder / "pred-more-tags.zarr",
        "VSCR, given tags": runner.ensure(folder / "pred-more-tags--no-crf.zarr", "predict", more, *frames[:2], *tags, "--no-crf", "-m", folder / "model-dev", "-o", folder / "pred-more-tags--no-crf.zarr"),
    }
    for row, store in stores.items():
        if not store.exists():
            raise SystemExit(f"{store}: not found (run python bench/davis.py --seeds {seed} first)")
    return {f"{SEVEN}: {row}": pooled([scored(runner, store, more)]) for row, store in stores.items()}


def summary(per_seed: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict]:
    """Each row's mean and standard deviation over the seeds."""
    rows = {row for seed_rows in per_seed.values() for row in seed_rows}
    out = {}
    for row in sorted(rows):
        values = [seed_rows[row] for seed_rows in per_seed.values() if row in seed_rows]
        out[row] = {"seeds": len(values), **{name: [round(statistics.mean(v[name] for v in values), 2), round(statistics.stdev(v[name] for v in values), 2) if len(values) > 1 else 0.0] for name in values[0]}}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--davis-work", type=Path, default=REPO / "build" / "davis", help="bench/davis.py's --work")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "davis" / "loo")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "davis_holdout.json")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"folds": FOLDS, "per_seed": {}}
    runner = Runner()
    folders = fold_layout(args.work)
    for seed in args.seeds:
        results["per_seed"][str(seed)] = {**dev_rows(runner, args.davis_work, seed), **fold_rows(runner, args.work, folders, seed)}
        results["summary"] = summary(results["per_seed"])
        results["commands"] = list(dict.fromkeys([*results.get("commands", []), *runner.commands]))
        results["machine"] = {**machine_info(), "load_average": os.getloadavg()}
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    for row, values in results["summary"].items():
        print(f"{row}: actor-action mIoU {values['actor_action.miou'][0]:.1f} ± {values['actor_action.miou'][1]:.1f}, fg IoU {values['fg_iou'][0]:.1f} ± {values['fg_iou'][1]:.1f} ({values['seeds']} seeds)")


if __name__ == "__main__":
    main()
