"""vscr report's output: the kind of folder it writes and its page, and the check of its inputs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vscr_cli.errors import VscrError

REPORT = "report"  # the kind of output (vscr-output.json) a report folder is
PAGE = "index.html"


def check_report_inputs(paths: Sequence[Path]) -> None:
    """Refuse (one line) an input path that does not exist: the report checks this before it imports
    its plotting and rendering."""
    for path in paths:
        if not path.exists():
            raise VscrError(f"{path}: no such file or folder")
