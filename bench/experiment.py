"""Experiments as data: a benchmark group is a declarative spec of ``vscr`` commands and the rows they
score; one generic runner executes them, caching every product under the hash of its command.

A :class:`Group` names its steps (each a ``vscr`` command whose output is :data:`OUT`), and its rows
(each a store one of the steps makes, scored by ``vscr score`` against a ground truth). Arguments may
hold :data:`SEED` (the seed being run) and :class:`Ref` (another step's product, or a path inside or
beside it). The runner renders a step's command, hashes it (its references by their own hashes, so a
changed input renames everything downstream) and writes the product to ``WORK/<command>-<hash>``; a
product that exists is reused, by every group and seed that asks for the same command. Nothing but
the commands' text decides the hash: after a change to the code a step's product is reused as it is
(delete it, or use another WORK, to run it again).

The runner keeps the results in the JSON the results page reads: per seed every row's scores
(percent), per row every command that made it, and per row the mean and standard deviation over the
seeds that have it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: vscr score's measures the rows keep (each a mean IoU), besides fg IoU, class accuracy and the frame count.
METRICS = ("actor_action", "actor", "action")


class _Placeholder:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: The step's own product (its ``-o``).
OUT = _Placeholder("OUT")
#: The seed being run.
SEED = _Placeholder("SEED")


@dataclass(frozen=True)
class Ref:
    """Another step's product; ``inside``: a path in it (a folder product), ``beside``: the suffix of a
    file written next to it (``vscr cam``'s ``.classifier``)."""

    step: str
    inside: str = ""
    beside: str = ""


Argument = str | int | float | Path | Ref | _Placeholder


@dataclass(frozen=True)
class Step:
    """One ``vscr`` command (without ``vscr -q``). ``suffix``: its product's (``.zarr``, ``.json``, none
    for a folder); ``done``: the file in the product that marks it complete (default: the product)."""

    args: tuple[Argument, ...]
    suffix: str = ""
    done: str = ""

    @property
    def command(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Row:
    """A table row: ``store`` (a step making a label store) scored against ``truth`` (a dataset folder
    or a step making one) with ``vscr score``'s ``options``."""

    title: str
    store: str | Ref
    truth: Path | Ref
    options: tuple[Argument, ...] = ()

    def score_step(self) -> Step:
        store = self.store if isinstance(self.store, Ref) else Ref(self.store)
        return Step(("score", store, "--gt", self.truth, *self.options, "--json", OUT), suffix=".json")


@dataclass(frozen=True)
class Group:
    """A benchmark group: its steps and rows, the data folders it needs (skipped without them), and
    whether it runs on the first seed only."""

    name: str
    description: str
    steps: Mapping[str, Step]
    rows: Mapping[str, Row]
    needs: tuple[Path, ...] = ()
    first_seed_only: bool = False

    @functools.cached_property
    def all_steps(self) -> dict[str, Step]:
        """The group's steps and each row's ``vscr score`` step (named by :func:`score_step_name`)."""
        return {**self.steps, **{score_step_name(key): row.score_step() for key, row in self.rows.items()}}

    def check(self) -> None:
        """Every reference names a step of the group, and no step refers to itself through others."""
        for name in self.all_steps:
            self._walk(name, ())

    def _walk(self, name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"group {self.name}: steps refer to each other in a cycle: {' -> '.join((*path, name))}")
        if name not in self.all_steps:
            raise ValueError(f"group {self.name}: {path[-1]} refers to an unknown step {name!r}")
        for argument in self.all_steps[name].args:
            if isinstance(argument, Ref):
                self._walk(argument.step, (*path, name))


def score_step_name(row: str) -> str:
    """The name of the step that scores ``row``."""
    return f"{row}.score"


def run_vscr(arguments: list[str]) -> None:
    """Runs ``vscr -q ARGUMENTS`` in the repository root (the interpreter's ``vscr_cli``)."""
    subprocess.run([sys.executable, "-m", "vscr_cli", "-q", *arguments], check=True, cwd=REPO)


def readable(text: str) -> str:
    """A path as a user types it in the repository root."""
    return text.replace(f"{REPO}/", "").replace(f"{REPO.parent}/", "../")


@dataclass
class Runner:
    """Runs groups' steps into ``work`` (products named by their commands' hashes), each once.

    ``execute`` runs one ``vscr`` command's arguments (default :func:`run_vscr`); ``commands`` keeps,
    per row, the text of every command that made it, as a user types it."""

    work: Path
    execute: Callable[[list[str]], None] = run_vscr
    commands: dict[str, list[str]] = field(default_factory=dict)

    def digest(self, group: Group, name: str, seed: int) -> str:
        """The hash of a step's command: its arguments with the seed, paths as a user types them, and
        references as their steps' hashes."""
        parts = []
        for argument in group.all_steps[name].args:
            if isinstance(argument, Ref):
                parts.append(f"@{self.digest(group, argument.step, seed)}/{argument.inside}{argument.beside}")
            elif argument is SEED:
                parts.append(str(seed))
            elif argument is OUT:
                parts.append("@out")
            else:
                parts.append(readable(str(argument)))
        return hashlib.sha256(json.dumps([group.all_steps[name].suffix, parts]).encode()).hexdigest()[:12]

    def product(self, group: Group, name: str, seed: int) -> Path:
        step = group.all_steps[name]
        return self.work / f"{step.command}-{self.digest(group, name, seed)}{step.suffix}"

    def resolve(self, group: Group, argument: Argument, seed: int, out: Path, row: str) -> str:
        if isinstance(argument, Ref):
            product = self.ensure(group, argument.step, seed, row)
            if argument.beside:
                return str(product.with_suffix(argument.beside))
            return str(product / argument.inside if argument.inside else product)
        if argument is SEED:
            return str(seed)
        if argument is OUT:
            return str(out)
        return str(argument)

    def ensure(self, group: Group, name: str, seed: int, row: str) -> Path:
        """The step's product, made first if missing (and the steps it refers to before it)."""
        step, out = group.all_steps[name], self.product(group, name, seed)
        arguments = [self.resolve(group, argument, seed, out, row) for argument in step.args]
        text = readable(shlex.join(["vscr", *arguments]))
        self.commands.setdefault(row, [])
        if text not in self.commands[row]:
            self.commands[row].append(text)
        if not (out / step.done if step.done else out).exists():
            print(f"$ {text}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            self.work.mkdir(parents=True, exist_ok=True)
            self.execute(arguments)
            print(f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        return out

    def row(self, group: Group, key: str, seed: int) -> dict[str, float]:
        """One row's scores for ``seed`` (its steps run where their products are missing)."""
        return scores(self.ensure(group, score_step_name(key), seed, key))

    def run(self, group: Group, seeds: Iterable[int]) -> dict[int, dict[str, dict[str, float]]]:
        """Every row of ``group`` for each seed (the first only where the group says so): seed -> row -> scores."""
        group.check()
        seeds = list(seeds)
        return {seed: {key: self.row(group, key, seed) for key in group.rows} for seed in (seeds[:1] if group.first_seed_only else seeds)}


def cell(mean: float, std: float, seeds: int) -> str:
    """A table cell of a measure over seeds: mean +- standard deviation, the value alone for one seed."""
    return f"{mean:.1f} ± {std:.1f}" if seeds > 1 else f"{mean:.1f}"


def scores(path: Path) -> dict[str, float]:
    """Percentages of a ``vscr score --json`` file, and the number of frames scored."""
    data = json.loads(path.read_text())["scores"]
    row = {metric: 100 * data[metric]["miou"] for metric in METRICS}
    return row | {"fg_iou": 100 * data["fg_iou"], "class_acc": 100 * data["actor_action"]["class_acc"], "frames": data["frames"]}


def summary(runs: Mapping[str, Mapping[str, Mapping[str, float]]], order: Iterable[str]) -> dict[str, dict]:
    """Per row of ``order`` that a seed has: mean and standard deviation of every measure over the seeds."""
    result = {}
    for row in order:
        per_seed = [rows[row] for rows in runs.values() if row in rows]
        if not per_seed:
            continue
        result[row] = {"seeds": len(per_seed)}
        for measure in per_seed[0]:
            values = [rows[measure] for rows in per_seed]
            result[row][measure] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return result


def record_runs(record: dict, runs: Mapping[int, Mapping[str, dict]], commands: Mapping[str, list[str]], order: Iterable[str]) -> dict:
    """``record`` (results.json) with ``runs`` and ``commands`` added: each row's commands once, the
    summary over every seed recorded."""
    every_run = record.setdefault("runs", {})
    for seed, rows in runs.items():
        every_run.setdefault(str(seed), {}).update(rows)
    recorded = record.setdefault("commands", {})
    for row, texts in commands.items():
        recorded[row] = list(dict.fromkeys([*recorded.get(row, []), *texts]))
    record["mean_std"] = summary(every_run, order)
    return record
