"""Video-level actor-action tags: the only supervision a weakly-supervised run uses.

Tags come from a CSV with a header ``video,tags`` (names like ``dog-running;adult-walking``
or A2D ids; an empty field means no A2D actor); :func:`vscr_cli.datasets.load_tags` also reads
them from an A2D ``Release/`` root (every valid id found in a video's annotation files).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path

from vscr_cli import labels
from vscr_cli.errors import TagError

Tags = dict[str, tuple[int, ...]]


def read_tags_csv(path: Path) -> Tags:
    """Parse a ``video,tags`` CSV into {video id: sorted tag ids}."""
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise TagError(f"{path}: cannot read tags ({exc.strerror})") from exc
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"video", "tags"} <= set(reader.fieldnames):
            raise TagError(f"{path}: expected a header 'video,tags'")
        tags: Tags = {}
        for number, row in enumerate(reader, start=2):
            video = (row["video"] or "").strip()
            if not video:
                raise TagError(f"{path}:{number}: empty video id")
            if video in tags:
                raise TagError(f"{path}:{number}: video {video!r} is listed twice")
            try:
                tags[video] = labels.parse_tags(row["tags"] or "")
            except ValueError as exc:
                raise TagError(f"{path}:{number}: {exc}") from exc
    return tags


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
