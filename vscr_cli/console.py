"""Where the CLI talks to people: logs, errors and progress bars on stderr (data goes to stdout)."""

from __future__ import annotations

import logging
import unicodedata
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

stderr = Console(stderr=True)
stdout = Console()
log = logging.getLogger("vscr")
T = TypeVar("T")


class Verbosity:
    """Set once by the top-level callback from -v/-q."""

    level = 0  # -1 quiet, 0 normal, 1+ verbose


#: Unicode categories that break or hide a line: control characters, line and paragraph separators,
#: lone surrogates (undecodable bytes of a file name).
_UNPRINTABLE = frozenset({"Cc", "Zl", "Zp", "Cs"})


def one_line(text: str) -> str:
    """``text`` with every control character escaped as Python writes it (a newline in a folder name
    becomes ``\\n``), so that a message naming any file stays one printable line."""
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _UNPRINTABLE else c for c in text)


def _log_library_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A library's warning (Zarr's about a foreign file in a store, say) as one log line: shown
    like any progress note, hidden by -q."""
    log.info("%s: %s", category.__name__, one_line(" ".join(str(message).split())))


def configure(verbose: int, quiet: bool) -> None:
    Verbosity.level = -1 if quiet else verbose
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    log.handlers[:] = [RichHandler(console=stderr, show_time=False, show_path=False, markup=False)]
    log.setLevel(level)
    log.propagate = False
    warnings.showwarning = _log_library_warning


@contextmanager
def progress() -> Iterator[Progress]:
    """A rich progress display on stderr (hidden with -q)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr,
        transient=True,
        disable=Verbosity.level < 0 or not stderr.is_terminal,
    ) as bar:
        yield bar


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr."""
    with progress() as bar:
        yield from bar.track(items, total=total, description=description)


def duration(seconds: float) -> str:
    """A duration for people: ``"42 s"``, ``"7 min 05 s"``, ``"3 h 20 min"``, ``"2 d 04 h"``."""
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days} d {hrs:02d} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
