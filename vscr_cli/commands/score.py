"""Score a prediction store (or a cam store's pseudo-labels) against ground truth: A2D mIoU, class and global accuracy, foreground IoU."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vscr_cli.options import Overwrite, Split
from vscr_cli.reports import print_scores
from vscr_cli.stages import score as stage
from vscr_cli.stages.score import METRICS, SCORES_KIND
from vscr_cli.store import check_output, file_output

NAME = "score"

def parse_metrics(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        raise typer.BadParameter(
            f"unknown metric(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(METRICS)}", param_hint="'--metrics'"
        )
    return names


def command(
    pred: Annotated[str, typer.Argument(help="Prediction store (kind pred, or cam to score its pseudo-labels): .zarr, .zarr.zip or '-' (default) for a zip on stdin.")] = "-",
    gt: Annotated[
        Optional[Path],
        typer.Option("--gt", show_default=False, help="Ground truth: an A2D Release root (real or from vscr synth) or a DAVIS-style folder (default: the one the prediction's recorded sources are in)."),
    ] = None,
    metrics: Annotated[
        str, typer.Option("--metrics", help=f"Comma-separated metrics to show: {', '.join(METRICS)}.")
    ] = ",".join(METRICS),
    split: Annotated[
        Optional[Split],
        typer.Option("--split", help="Score every video of this ground-truth split (all must be predicted); default: the predicted videos."),
    ] = None,
    dense: Annotated[bool, typer.Option("--dense", help="Score every frame (the dense maps of `vscr synth --dense`), not just the annotated ones.")] = False,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Count ground-truth frames without a prediction as all background instead of failing.")] = False,
    predicted_only: Annotated[bool, typer.Option("--predicted-only", help="Score only the ground-truth frames the prediction holds (a sample of densely annotated videos, e.g. --every 5).")] = False,
    resize: Annotated[bool, typer.Option("--resize", help="Scale predictions of another size to the ground truth's (nearest neighbour) instead of failing.")] = False,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also show the IoU of every class.")] = False,
    per_video: Annotated[bool, typer.Option("--per-video", help="Also show each video's mIoU and foreground scores (the JSON report always holds them).")] = False,
    json_path: Annotated[Optional[str], typer.Option("--json", metavar="FILE", help="Write all scores and confusion matrices as JSON to FILE ('-': stdout, instead of the tables).")] = None,
    ignore_footage: Annotated[bool, typer.Option("--ignore-footage", help="Score even where the ground truth's footage is not the footage the store was made from (a re-encoded copy).")] = False,
    overwrite: Overwrite = False,
) -> None:
    chosen = parse_metrics(metrics)
    report_file = Path(json_path) if json_path not in (None, "-") else None
    if report_file is not None:
        check_output(report_file, SCORES_KIND, overwrite, resumable=False)
    scores, report = stage.run(pred, gt, chosen, split.value if split else None, dense, allow_missing, predicted_only, resize, ignore_footage)
    if json_path is not None:
        text = stage.report_json(report)
        if report_file is None:
            print(text)
            return
        file_output(report_file, SCORES_KIND, (text + "\n").encode(), overwrite)
    print_scores(scores, chosen, report, per_class, per_video)
