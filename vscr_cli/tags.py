"""Video-level actor-action tags: the only supervision a weakly-supervised run uses.

Tags come from a CSV with a header ``video,tags`` (names like ``dog-running;adult-walking``
or A2D ids; an empty field means no A2D actor: ``clip,``); :func:`vscr_cli.datasets.load_tags` also
reads them from an A2D ``Release/`` root (every valid id found in a video's annotation files).

Users' text files (a tags CSV, an A2D ``videoset.csv``, a ``.txt`` list of sources) are read with
:func:`read_text` and :func:`csv_rows`: UTF-8, a leading byte-order mark (as spreadsheets write)
dropped, and anything else one error line naming the file (and the line).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from vscr_cli import labels
from vscr_cli.errors import TagError, VscrError

Tags = dict[str, tuple[int, ...]]
#: The largest user's text file read (the real A2D videoset.csv is 0.2 MB): /dev/zero is not a tags CSV.
TEXT_LIMIT = 64 << 20


def read_text(path: Path, error: type[VscrError], what: str) -> str:
    """The text of a user's file ``path`` (``what`` it holds, for the message): UTF-8 with or without
    a byte-order mark, at most :data:`TEXT_LIMIT` bytes; a file that cannot be read, is larger or is
    not UTF-8 is ``error`` naming it."""
    try:
        with path.open("rb") as handle:
            data = handle.read(TEXT_LIMIT + 1).removeprefix(codecs.BOM_UTF8)
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc.strerror or exc})") from exc
    if len(data) > TEXT_LIMIT:
        raise error(f"{path}: larger than {TEXT_LIMIT >> 20} MiB, too large for {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise error(f"{path}:{line}: not UTF-8 text ({exc.reason}); save it as UTF-8") from exc


def csv_rows(path: Path, error: type[VscrError], what: str) -> Iterator[tuple[str, list[str]]]:
    """The non-blank rows of the CSV file ``path`` (read as :func:`read_text` does), each with
    ``"path:line"`` to name it in an error; malformed CSV is ``error`` naming the file and line."""
    reader = csv.reader(io.StringIO(read_text(path, error, what), newline=""))
    try:
        for fields in reader:
            if fields:
                yield f"{path}:{reader.line_num}", fields
    except csv.Error as exc:
        raise error(f"{path}:{reader.line_num}: malformed CSV ({exc})") from exc


def read_tags_csv(path: Path) -> Tags:
    """Parse a ``video,tags`` CSV into {video id: sorted tag ids}: every row has the header's
    fields, every video is listed once (a :class:`TagError` naming the file and line otherwise)."""
    rows = csv_rows(path, TagError, "tags")
    header = [name.strip() for name in next(rows, ("", []))[1]]
    if not {"video", "tags"} <= set(header):
        raise TagError(f"{path}: expected a header 'video,tags'")
    video_field, tags_field = header.index("video"), header.index("tags")
    tags: Tags = {}
    for where, fields in rows:
        if len(fields) != len(header):
            hint = " (a video without tags is written 'VIDEO,')" if len(fields) < len(header) else ""
            raise TagError(f"{where}: expected {len(header)} fields like the header {','.join(header)!r}, found {len(fields)}{hint}")
        video = fields[video_field].strip()
        if not video:
            raise TagError(f"{where}: empty video id")
        if video in tags:
            raise TagError(f"{where}: video {video!r} is listed twice")
        try:
            tags[video] = labels.parse_tags(fields[tags_field])
        except ValueError as exc:
            raise TagError(f"{where}: {exc}") from exc
    return tags


def check_tags(spec: str | Path) -> None:
    """Refuse, with the line reading them gives, a tags CSV that cannot be read or parsed (a folder,
    an A2D root, is checked when read): a command checks this before it imports its stage."""
    path = Path(spec)
    if not path.is_dir():
        read_tags_csv(path)


def write_tags_csv(path: Path, tags: Mapping[str, Iterable[int]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "tags"])
        for video, ids in tags.items():
            writer.writerow([video, labels.format_tags(ids)])


def require_tags(video_ids: Iterable[str], tags: Mapping[str, tuple[int, ...]], where: str) -> Tags:
    """Tags of each video, or a TagError naming the videos that have none in ``where``."""
    video_ids = list(video_ids)
    missing = [v for v in video_ids if v not in tags]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise TagError(f"{where}: no tags for video(s) {shown}")
    return {v: tags[v] for v in video_ids}
