"""vscr report: one static page whose tables equal the score reports and whose links all resolve."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from vscr_cli.stages.report import file_stem, read_metrics

from .conftest import REPO


class PageParser(HTMLParser):
    """The page's linked files and the cells of its tables (one list of rows per table, by class)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("img", "a") and (link := found.get("src") or found.get("href")):
            self.links.append(link)
        elif tag == "table":
            self._table = self.tables.setdefault(found.get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def check_page(page: Path, reports: dict[str, Path]) -> PageParser:
    """Every link of ``page`` is a file beside it; its scores table holds one row per report
    (name -> score JSON) with the JSON's mIoUs and foreground IoU."""
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    assert parser.links, "the page links no picture"
    for link in parser.links:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", link), link  # a plain file beside the page: opens from disk, no network
        assert (page.parent / link).is_file(), link
    header, *rows = parser.tables["scores"]
    assert header[:5] == ["scored", "actor-action mIoU", "actor mIoU", "action mIoU", "fg IoU"]
    assert [row[0] for row in rows] == list(reports)
    for row in rows:
        scores = json.loads(reports[row[0]].read_text())["scores"]
        expected = [_percent(scores[space]["miou"]) for space in ("actor_action", "actor", "action")] + [_percent(scores["fg_iou"])]
        assert row[1:5] == expected, row
    return parser


def test_metrics_rows_are_read_once_per_iteration_in_order(tmp_path):
    rows = [{"iteration": 2, "total": 1.0}, {"iteration": 1, "total": 3.0}, {"iteration": 2, "total": 0.5}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + '\n{"iteration": 3, "tot')
    assert read_metrics(tmp_path) == [{"iteration": 1, "total": 3.0}, {"iteration": 2, "total": 0.5}]


def test_a_file_that_is_not_a_score_report_is_one_line(cli, tmp_path):
    notes = tmp_path / "notes.json"
    notes.write_text('{"a": 1}')
    result = cli("report", notes, "-o", tmp_path / "page")
    assert result.code == 1 and result.stderr.strip().splitlines() == [f"vscr: error: {notes}: not a score report (write one with vscr score --json FILE)"]
    assert not (tmp_path / "page").exists()


def test_picture_names_are_plain_file_names():
    assert file_stem("VSCR + align (test)") == "VSCR-align-test"
    assert file_stem("../../etc/x") == "etc-x" and file_stem("...") == "run"


def test_a_refused_report_answers_before_loading_matplotlib(tmp_path):
    """An existing output or a missing input is refused before the plotting and rendering load."""
    (tmp_path / "page").mkdir()
    (tmp_path / "page" / "mine.txt").write_text("a user's")
    probe = "import sys; from vscr_cli.cli import run; code = run(sys.argv[1:]); print('matplotlib' in sys.modules, code)"
    for args, line in (
        (["report", ".", "-o", "page"], "vscr: error: page: output exists (pass --overwrite to replace it)"),
        (["report", "missing.json", "-o", "new"], "vscr: error: missing.json: no such file or folder"),
    ):
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.stdout.split() == ["False", "1"] and done.stderr.splitlines() == [line], done.stderr
    assert (tmp_path / "page" / "mine.txt").read_text() == "a user's" and not (tmp_path / "new").exists()
