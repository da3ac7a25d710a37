"""One static HTML page of what a run achieved (``vscr report``): the score tables of ``vscr score
--json`` reports, a per-class IoU chart, the training curves of model folders, overlay sheets of each
scored store's worst and best videos, and the commands and parameters recorded in the stores.

The page and its pictures live in one folder and link to each other by relative paths, so it opens
from disk with no server and no network.
"""

from __future__ import annotations

import html
import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402

from vscr_cli import console, labels  # noqa: E402
from vscr_cli.errors import VscrError  # noqa: E402
from vscr_cli.settings.model import MODEL_CONFIG, MODEL_KIND, MODEL_METRICS, logged_steps  # noqa: E402
from vscr_cli.settings.report import PAGE, REPORT, check_report_inputs  # noqa: E402
from vscr_cli.stages import show  # noqa: E402
from vscr_cli.store import folder_output, open_store, output_kind  # noqa: E402

#: The columns of the score tables: (key in a report's "scores", title); mIoUs are per label space.
SPACES = (("actor_action", "actor-action mIoU"), ("actor", "actor mIoU"), ("action", "action mIoU"))
#: The training curves drawn from metrics.jsonl, one panel each: (columns, title).
CURVES = (
    (("total", "edge", "cam", "tag", "classifier", "action"), "losses (Eq. 4 terms, classifier, action head)"),
    (("learning_rate",), "learning rate"),
    (("seconds", "data_seconds"), "seconds per iteration (all, waiting for data)"),
)


@dataclass
class ScoreReport:
    """One ``vscr score --json`` report: its name on the page, where it was read, and its content."""

    name: str
    path: Path
    content: dict[str, Any]

    @property
    def store(self) -> str:
        """The scored store as recorded (relative to where ``vscr score`` ran)."""
        return str(self.content.get("pred", ""))

    def locate(self, key: str) -> Path | None:
        """The path recorded under ``key`` ("pred", "gt"): as recorded when it is there, else the
        same name beside the report (a run folder moved, or a report made from another folder)."""
        recorded = Path(str(self.content.get(key, "")))
        return next((path for path in (recorded, self.path.parent / recorded.name) if recorded.name and path.exists()), None)

    def miou(self, space: str) -> float | None:
        return self.content["scores"][space]["miou"]

    def video_miou(self) -> dict[str, float]:
        """Each scored video's actor-action mIoU (videos without one left out); only the videos with
        an actor in the ground truth or the prediction (a foreground IoU) when there are any, so an
        empty scene predicted empty (mIoU 100) is not shown as the best."""
        found, with_actor = {}, {}
        for video, scores in self.content.get("per_video", {}).items():
            value = scores.get("actor_action.miou")
            if value is not None:
                found[video] = float(value)
                if scores.get("fg_iou") is not None:
                    with_actor[video] = float(value)
        return with_actor or found


@dataclass
class Inputs:
    """What a report is made of, found in the folders and files given."""

    scores: list[ScoreReport] = field(default_factory=list)
    models: list[Path] = field(default_factory=list)


def is_score_report(content: Any) -> bool:
    """Whether parsed JSON is a ``vscr score --json`` report."""
    return isinstance(content, dict) and isinstance(content.get("scores"), dict) and "per_video" in content and "pred" in content


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _report_name(path: Path) -> str:
    return path.stem.removeprefix("score-")


def find_inputs(paths: Sequence[Path], names: Mapping[Path, str] | None = None) -> Inputs:
    """Score reports and model folders among ``paths``: each a score report, a model folder, or a
    folder holding them (one level down, e.g. a ``vscr demo`` folder). A report is named on the
    page by ``names`` (by its path) or its file name. A path that is none of these is a :class:`VscrError`."""
    found = Inputs()
    check_report_inputs(paths)
    for path in paths:
        if path.is_file():
            content = _read_json(path)
            if not is_score_report(content):
                raise VscrError(f"{path}: not a score report (write one with vscr score --json FILE)")
            found.scores.append(ScoreReport((names or {}).get(path, _report_name(path)), path, content))
        elif output_kind(path) == MODEL_KIND:
            found.models.append(path)
        else:
            before = (len(found.scores), len(found.models))
            for child in sorted(path.iterdir()):
                if child.is_file() and child.suffix == ".json" and is_score_report(content := _read_json(child)):
                    found.scores.append(ScoreReport(_report_name(child), child, content))
                elif child.is_dir() and output_kind(child) == MODEL_KIND:
                    found.models.append(child)
            if (len(found.scores), len(found.models)) == before:
                raise VscrError(f"{path}: holds no score report (vscr score --json) and no model folder")
    return found


def read_metrics(model: Path) -> list[dict[str, float]]:
    """The rows of a model folder's metrics.jsonl, one per logged iteration (the last row of an
    iteration logged twice wins), in iteration order."""
    rows = {row["iteration"]: row for row in logged_steps(model / MODEL_METRICS)}
    return [rows[key] for key in sorted(rows)]


def plot_curves(rows: Sequence[Mapping[str, float]], title: str, path: Path) -> None:
    """The training curves of one run (iteration on x) as a PNG."""
    figure, axes = plt.subplots(1, len(CURVES), figsize=(5 * len(CURVES), 3.4), constrained_layout=True)
    iterations = [row["iteration"] for row in rows]
    for axis, (columns, caption) in zip(axes, CURVES):
        for column in columns:
            if any(column in row for row in rows):
                axis.plot(iterations, [row.get(column, float("nan")) for row in rows], label=column)
        axis.set_title(caption, fontsize=9)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
        if len(columns) > 1:
            axis.legend(fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_class_iou(reports: Sequence[ScoreReport], path: Path) -> None:
    """Grouped bars: each actor-action class's IoU (%) in each report, as a PNG."""
    classes = sorted({int(c) for r in reports for c, v in r.content["scores"]["actor_action"]["per_class_iou"].items() if v is not None})
    figure, axis = plt.subplots(figsize=(max(6.0, 0.9 * len(classes) * max(1, len(reports)) / 2), 3.8), constrained_layout=True)
    width = 0.8 / max(1, len(reports))
    for number, report in enumerate(reports):
        per_class = report.content["scores"]["actor_action"]["per_class_iou"]
        values = [100 * (per_class.get(str(c)) or 0.0) for c in classes]
        axis.bar([i + number * width for i in range(len(classes))], values, width, label=report.name)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(classes))], [labels.name_of(c) for c in classes], rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("IoU (%)")
    axis.set_ylim(0, 100)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=7, ncols=2)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def file_stem(name: str) -> str:
    """``name`` as a plain file name for a picture of the page: letters, digits, ``.``, ``_`` and ``-``
    (``VSCR + align (test)`` -> ``VSCR-align-test``), so every link is a plain relative URL."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "run"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _table(header: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def scores_table(reports: Sequence[ScoreReport]) -> str:
    """The summary table: one row per report, mIoU per label space and foreground IoU in %."""
    rows = [[r.name, *(_percent(r.miou(space)) for space, _ in SPACES), _percent(r.content["scores"].get("fg_iou")), str(r.content.get("videos", ""))] for r in reports]
    return _table(["scored", *(title for _, title in SPACES), "fg IoU", "videos"], rows, "scores")


def class_table(report: ScoreReport) -> str:
    per_class = report.content["scores"]["actor_action"]["per_class_iou"]
    rows = [[labels.name_of(int(c)), _percent(v)] for c, v in sorted(per_class.items(), key=lambda item: int(item[0])) if v is not None]
    return _table(["class", "IoU"], rows, "per-class")


def video_table(report: ScoreReport) -> str:
    rows = [
        [video, str(scores.get("frames", "")), _percent(scores.get("actor_action.miou")), _percent(scores.get("fg_iou"))]
        for video, scores in sorted(report.content.get("per_video", {}).items())
    ]
    return _table(["video", "frames", "actor-action mIoU", "fg IoU"], rows, "per-video")


def _recorded(location: str) -> tuple[str, dict[str, Any]] | None:
    """The command line and parameters recorded in the store at ``location`` (None if unreadable)."""
    try:
        with open_store(location) as store:
            record = store.record
    except VscrError:
        return None
    return shlex.join(str(a) for a in record.created_by.get("argv", [])), record.params


def _overlays(report: ScoreReport, store: Path | None, number: int, folder: Path) -> list[tuple[str, str]]:
    """Sheets of the worst and best scored video of a report's ``store`` (``vscr show --side-by-side``
    beside the ground truth); (caption, file name) each, none when the store cannot be read."""
    videos = report.video_miou()
    if not videos or store is None:
        console.log.warning("no overlays of %s: its store %s is not there", report.name, report.store)
        return []
    worst, best = min(videos, key=videos.__getitem__), max(videos, key=videos.__getitem__)
    truth, made = report.locate("gt"), []
    for which, video in (("worst", worst), ("best", best)) if worst != best else (("only", worst),):
        name = f"overlay-{number}-{file_stem(report.name)}-{which}.png"  # numbered: names may share a stem
        try:
            show.run(str(store), folder / name, video, gt=truth, side_by_side=True)
        except VscrError as error:
            console.log.warning("no overlay of %s in %s: %s", video, store, error)
            continue
        made.append((f"{which}: {video} (actor-action mIoU {_percent(videos[video])})", name))
    return made


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #ddd}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:85%}h2{margin-top:1.6em}
figure img{min-width:60%;image-rendering:pixelated}
"""


def render_page(inputs: Inputs, folder: Path, title: str) -> str:
    """Write the pictures into ``folder`` and return the page's HTML."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if inputs.scores:
        parts += ["<h2>Scores (%)</h2>", scores_table(inputs.scores)]
        plot_class_iou(inputs.scores, folder / "class-iou.png")
        parts.append("<h3>Actor-action IoU per class</h3><img src='class-iou.png' alt='per-class IoU'>")
    for model in inputs.models:
        rows = read_metrics(model)
        parts.append(f"<h2>Training: {html.escape(model.name)}</h2>")
        if rows:
            name = f"curves-{file_stem(model.name)}.png"
            plot_curves(rows, f"{model.name}: {len(rows)} logged iterations", folder / name)
            parts.append(f"<img src='{html.escape(name)}' alt='training curves'>")
        config = _read_json(model / MODEL_CONFIG)
        if config is not None:
            parts.append(f"<details><summary>config.json</summary><pre>{html.escape(json.dumps(config, indent=2))}</pre></details>")
    for number, report in enumerate(inputs.scores, 1):
        parts.append(f"<h2>{html.escape(report.name)}</h2><p>{html.escape(report.store)} against {html.escape(str(report.content.get('gt')))}</p>")
        store = report.locate("pred")
        for caption, name in _overlays(report, store, number, folder):
            parts.append(f"<figure><img src='{html.escape(name)}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}</figcaption></figure>")
        parts += ["<details><summary>per class</summary>", class_table(report), "</details>", "<details><summary>per video</summary>", video_table(report), "</details>"]
        if store is not None and (recorded := _recorded(str(store))) is not None:
            command, params = recorded
            parts.append(f"<details><summary>command and parameters</summary><pre>{html.escape(command)}</pre><pre>{html.escape(json.dumps(params, indent=2))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def run(paths: Sequence[Path], output: Path, title: str = "vscr report", overwrite: bool = False, names: Mapping[Path, str] | None = None) -> Path:
    """``vscr report``: the page of the score reports and model folders in ``paths`` into the folder
    ``output`` (replaced with ``overwrite`` when it is a report vscr made); returns the page's path.
    ``names``: how the page names the score reports given by path (default: their file names)."""
    inputs = find_inputs(paths, names)
    with folder_output(output, REPORT, overwrite) as staging:
        (staging / PAGE).write_text(render_page(inputs, staging, title), encoding="utf-8")
    console.log.info("wrote %s (%d score reports, %d training runs)", output / PAGE, len(inputs.scores), len(inputs.models))
    return output / PAGE
