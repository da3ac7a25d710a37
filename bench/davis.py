"""The davis benchmark at A2D's frame size (issue #36): the README's pipeline on real footage,
the network against the pseudo-labels it learns from, both sides with and without the same CRF.

Data: the 12 DAVIS-2016 sequences of ../shared/data/davis-dev (7) and davis-more (5), every 5th
frame (``--every``; 1: every frame, as the README's commands read them) read at 320 px (A2D's
``clips320H``), scored against the full-size masks. Stores and models
go under ``--work`` (build/davis), the scores into ``--out`` (JSON: per seed, mean and standard
deviation, and every command). Every step is a ``vscr`` command run as a user would type it; a
step whose product exists is not run again (delete it to redo).

Rows, each model trained with the README's defaults (``vscr train``: the cpu preset) and
``--seed S``, plus the options of ``--variant``:

- transductive, all 12 sequences: ``vscr cam`` (the pseudo-labels) and ``vscr cam --crf`` (the
  same through the dense CRF), the network given the tags with ``--no-crf`` and with the CRF
  (``vscr predict``'s default), on the same frames;
- the same on davis-dev alone (the numbers to choose by);
- inductive: the davis-dev model on davis-more without tags and given them (CRF), beside Stage I
  on davis-more given its tags (the davis-dev classifier) with and without the CRF.

    python bench/davis.py --seeds 0 1 2                                   # the defaults
    python bench/davis.py --seeds 0 1 2 --variant no-share -- --crop-share 0   # a variant: train options after --
    python bench/davis.py --seeds 0 1 2 --models dev --variant paper-cpu "--cam-options=--preset paper --arch tf_efficientnet_lite0" "--predict-options=--preset paper" -- --preset paper-cpu
                                                                          # the paper at CPU scale (docs/paper.md)
    python bench/davis.py --seeds 0 1 2 --models all --every 1 --variant every-frame   # every frame, the README's path
    python bench/davis.py --markdown                                      # the table of --out
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from experiment import cell  # beside this script (its folder is on sys.path)
from machine import machine_info

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SETS = {"dev": SHARED / "davis-dev", "more": SHARED / "davis-more"}
HEIGHT, EVERY = 320, 5
METRICS = ("actor_action.miou", "fg_iou")


def vscr() -> list[str]:
    """The command users run (the virtual environment's, else ``python -m vscr_cli``)."""
    local = REPO / ".venv" / "bin" / "vscr"
    return [str(local)] if local.is_file() else [sys.executable, "-m", "vscr_cli"]


class Runner:
    """Runs commands whose product is missing, logging each; ``commands`` keeps them all."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def ensure(self, product: Path, *args: object) -> Path:
        command = [*vscr(), "-q", *map(str, args)]
        self.commands.append(shlex.join(command))
        if not product.exists():
            started = time.monotonic()
            print("+", shlex.join(command), flush=True)
            subprocess.run(command, check=True)
            print(f"  ({time.monotonic() - started:.0f} s)", flush=True)
        return product


def layout(work: Path) -> dict[str, Path]:
    """The three DAVIS-style folders the benchmark reads: dev, more, and ``all`` (links to all 12
    sequences and their tags in one CSV, so one store and one ground truth hold them)."""
    combined = work / "all"
    combined.mkdir(parents=True, exist_ok=True)
    rows = ["video,tags"]
    for folder in SETS.values():
        if not (folder / "tags.csv").is_file():
            raise SystemExit(f"{folder}: not found (the davis benchmark needs ../shared/data/davis-dev and davis-more)")
        rows += (folder / "tags.csv").read_text().splitlines()[1:]
        for sequence in sorted(p for p in folder.iterdir() if p.is_dir()):
            link = combined / sequence.name
            if not link.is_symlink():
                link.symlink_to(os.path.relpath(sequence, combined))
    (combined / "tags.csv").write_text("\n".join(rows) + "\n")
    return {**SETS, "all": combined}


def score(runner: Runner, store: Path, gt: Path) -> dict[str, float]:
    """The store's scores (percent) on the frames it holds, against ``gt``'s full-size masks."""
    report = runner.ensure(store.with_suffix(".score.json"), "score", store, "--gt", gt, "--predicted-only", "--resize", "--json", store.with_suffix(".score.json"))
    metrics = json.loads(report.read_text())["metrics"]
    return {name: round(100 * metrics[name], 2) for name in METRICS}


def slug(options: list[str]) -> str:
    """A file-name suffix for cam options (``--doubt-band 0.25`` -> ``-doubt-band-0.25``)."""
    return "".join("-" + option.lstrip("-") for option in options)


def frame_options(every: int) -> tuple[str, ...]:
    """The frames every stage reads: every ``every``-th, at A2D's height."""
    return ("--every", str(every), "--height", str(HEIGHT))


def stores(runner: Runner, work: Path, data: dict[str, Path], cam_options: list[str], models: list[str], every: int = EVERY) -> dict[str, Path]:
    """Edges and cam stores of the ``models``' sets (``all``, ``dev``; each set with its own
    classifier, fitted once), and with ``dev`` Stage I on ``more`` with the dev classifier; each cam
    store also through the CRF (``--crf``). Of every ``every``-th frame (named so where not
    :data:`EVERY`)."""
    made = {}
    frames, suffix = frame_options(every), "" if every == EVERY else f"-every{every}"
    for name in models:
        made[f"edges-{name}"] = runner.ensure(work / f"edges-{name}{suffix}.zarr", "edges", data[name], *frames, "-o", work / f"edges-{name}{suffix}.zarr")
    for name, classifier in [(name, name) for name in models] + ([("more", "dev")] if "dev" in models else []):
        tags = ("--tags", data[name] / "tags.csv", "--classifier", work / f"cam-{classifier}{suffix}.classifier")
        crf_options = cam_options if "--crf" in cam_options else [*cam_options, "--crf"]
        for key, options in ((f"cam-{name}", cam_options), (f"cam-{name}-crf", crf_options)):
            store = work / f"cam-{name}{slug(options)}{suffix}.zarr"
            made[key] = runner.ensure(store, "cam", data[name], *frames, *tags, *options, "-o", store)
    return made


def seed_rows(runner: Runner, work: Path, data: dict[str, Path], made: dict[str, Path], seed: int, variant: str, options: list[str], models: list[str], rounds: int, predicting: Sequence[str] = (), every: int = EVERY) -> dict[str, dict]:
    """One seed's rows (see the module's docstring) of the ``models`` (``all``, ``dev``), each the
    last of ``rounds`` trainings: round r learns from round r-1's predictions on its training
    frames given their tags (``vscr predict --tags``, with the CRF: a self-training round). Every
    scored prediction takes the ``predicting`` options too (``--preset paper``). An earlier round's
    model is scored too (rows named ``round r``, given tags, with the CRF: the labels it passed on,
    and without), so the rounds' numbers say where to stop. Predictions hold every ``every``-th frame, as the stores."""
    frames = frame_options(every)[:2]
    folder = work / variant / f"s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    for name in models:
        tags = ("--tags", data[name] / "tags.csv")
        targets: tuple = ("--cam", made[f"cam-{name}"])
        for round_ in range(1, rounds + 1):
            model = folder / f"model-{name}" if round_ == rounds else folder / f"model-{name}-round{round_}"
            runner.ensure(model, "train", data[name], "--edges", made[f"edges-{name}"], *targets, "--seed", seed, *options, "--no-tensorboard", "-o", model)
            if round_ < rounds:
                relabelled = runner.ensure(folder / f"labels-{name}-round{round_}.zarr", "predict", data[name], *frames, *tags, "-m", model, "-o", folder / f"labels-{name}-round{round_}.zarr")
                targets = ("--cam", relabelled, *tags)
                plain = runner.ensure(folder / f"pred-{name}-round{round_}--no-crf.zarr", "predict", data[name], *frames, *tags, *predicting, "--no-crf", "-m", model, "-o", folder / f"pred-{name}-round{round_}--no-crf.zarr")
                rows[f"{name}: VSCR round {round_}, given tags"] = score(runner, plain, data[name])
                if not predicting:  # the labels passed on are the scored prediction with the CRF
                    rows[f"{name}: VSCR round {round_}, given tags, CRF"] = score(runner, relabelled, data[name])
        for crf in ("--no-crf", "--crf"):
            store = runner.ensure(folder / f"pred-{name}{crf}.zarr", "predict", data[name], *frames, *tags, *predicting, crf, "-m", model, "-o", folder / f"pred-{name}{crf}.zarr")
            rows[f"{name}: VSCR, given tags{', CRF' if crf == '--crf' else ''}"] = score(runner, store, data[name])
    model = folder / "model-dev"
    for tagged in (False, True) if "dev" in models else ():
        tags = ("--tags", data["more"] / "tags.csv") if tagged else ()
        store = runner.ensure(folder / f"pred-more{'-tags' if tagged else ''}.zarr", "predict", data["more"], *frames, *tags, *predicting, "--crf", "-m", model, "-o", folder / f"pred-more{'-tags' if tagged else ''}.zarr")
        rows[f"more (inductive): VSCR{', given tags' if tagged else ''}, CRF"] = score(runner, store, data["more"])
    return rows


def cam_rows(runner: Runner, data: dict[str, Path], made: dict[str, Path], models: list[str]) -> dict[str, dict]:
    """Stage I's rows (the same for every seed: one classifier per set)."""
    rows = {}
    for name in (*models, "more") if "dev" in models else models:
        where = f"{name} (inductive)" if name == "more" else name
        rows[f"{where}: CAM, given tags"] = score(runner, made[f"cam-{name}"], data[name])
        rows[f"{where}: CAM, given tags, CRF"] = score(runner, made[f"cam-{name}-crf"], data[name])
    return rows


def summary(per_seed: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Each row's mean and standard deviation over the seeds that have it."""
    rows: dict[str, dict] = {}
    for seed_rows_ in per_seed.values():
        for row, values in seed_rows_.items():
            rows.setdefault(row, {name: [] for name in METRICS})
            for name in METRICS:
                rows[row][name].append(values[name])
    return {
        row: {"seeds": len(values[METRICS[0]]), **{name: [round(statistics.mean(v), 2), round(statistics.stdev(v), 2) if len(v) > 1 else 0.0] for name, v in values.items()}}
        for row, values in rows.items()
    }


def markdown(results: dict) -> str:
    lines = []
    for variant, entry in results["variants"].items():
        options = " ".join(["vscr cam", *entry.get("cam_options", []), "; vscr train", *entry["train_options"], "; vscr predict", *entry.get("predict_options", []), f"; {entry.get('rounds', 1)} round(s)"])
        lines += [f"\n{variant} (`{options}`)\n", "| row | seeds | actor-action mIoU | fg IoU |", "|---|---:|---:|---:|"]
        for row, values in entry["summary"].items():
            cells = (cell(mean, std, values["seeds"]) for mean, std in (values[n] for n in METRICS))
            lines.append(f"| {row} | {values['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", default="defaults", help="name of the training options after --")
    parser.add_argument("--cam-options", default="", help="vscr cam options of the variant's pseudo-labels (one string)")
    parser.add_argument("--predict-options", default="", help="vscr predict options of the variant's scored predictions (one string)")
    parser.add_argument("--rounds", type=int, default=1, help="trainings per model, each after the first on the last one's predicted labels")
    parser.add_argument("--every", type=int, default=EVERY, help="every Nth frame for every stage (stores, training, the scored predictions); 1: every frame, the README's path")
    parser.add_argument("--models", nargs="+", choices=("all", "dev"), default=["all", "dev"], help="which models to train: on all 12 sequences, on davis-dev")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "davis")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "davis.json")
    parser.add_argument("--markdown", action="store_true", help="print the tables of --out and stop")
    parser.add_argument("train_options", nargs="*", help="vscr train options of the variant")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {"variants": {}}
    if args.markdown:
        print(markdown(results))
        return
    runner = Runner()
    data = layout(args.work)
    cam_options = shlex.split(args.cam_options)
    made = stores(runner, args.work, data, cam_options, args.models, args.every)
    stage_one = cam_rows(runner, data, made, args.models)
    predicting = shlex.split(args.predict_options)
    entry = results["variants"].setdefault(args.variant, {"train_options": args.train_options, "cam_options": cam_options, "predict_options": predicting, "rounds": args.rounds, "every": args.every, "per_seed": {}})
    if (entry["train_options"], entry.get("cam_options", []), entry.get("predict_options", []), entry.get("rounds", 1), entry.get("every", EVERY)) != (args.train_options, cam_options, predicting, args.rounds, args.every):
        raise SystemExit(f"variant {args.variant!r} was run with other options: name this one differently")
    for seed in args.seeds:
        rows = seed_rows(runner, args.work, data, made, seed, args.variant, args.train_options, args.models, args.rounds, predicting, args.every)
        entry["per_seed"][str(seed)] = {**stage_one, **entry["per_seed"].get(str(seed), {}), **rows}
        entry["summary"] = summary(entry["per_seed"])
        entry["commands"] = list(dict.fromkeys([*entry.get("commands", []), *runner.commands]))  # a later run (other --models) adds its own
        entry["machine"] = {**machine_info(), "load_average": os.getloadavg()}
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
