"""DAVIS-style folders: ``<seq>/frames/NNNNN.jpg``, ``<seq>/masks/NNNNN.png`` and a ``tags.csv``.

A mask becomes an A2D label map with the sequence's tag id where mask > 0 and background
elsewhere; a sequence with no tag (no A2D actor) is all background. A sequence with several
tags cannot be turned into a label map from one binary mask and is refused.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from vscr_cli import labels
from vscr_cli.errors import SourceError
from vscr_cli.tags import Tags, read_tags_csv
from vscr_cli.video import IMAGE_SUFFIXES, read_image


class DavisFolder:
    """A folder of DAVIS-style sequences with binary masks and a tags CSV."""

    def __init__(self, root: str | Path, tags_csv: str | Path | None = None) -> None:
        self.root = Path(root)
        self.tags_csv = Path(tags_csv) if tags_csv is not None else self.root / "tags.csv"
        if not self.tags_csv.is_file():
            raise SourceError(f"{self.root}: no tags.csv (a DAVIS-style folder needs video-level tags)")

    @cached_property
    def tags(self) -> Tags:
        return read_tags_csv(self.tags_csv)

    def videos(self, split: str = "all") -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "masks").is_dir() and p.name in self.tags)

    def _mask_files(self, video_id: str) -> list[Path]:
        folder = self.root / video_id / "masks"
        if not folder.is_dir():
            raise SourceError(f"{folder}: no masks folder for video {video_id!r}")
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    def labeled_frames(self, video_id: str) -> tuple[int, ...]:
        """Masks are matched to frames by sorted order, as the frame folder is read."""
        return tuple(range(len(self._mask_files(video_id))))

    def label_map(self, video_id: str, frame: int) -> np.ndarray:
        mask = read_image(self._mask_files(video_id)[frame], mode="L")
        video_tags = self.tags.get(video_id, ())
        if len(video_tags) > 1:
            raise SourceError(f"{self.tags_csv}: video {video_id!r} has several tags; one binary mask cannot say which is where")
        label = video_tags[0] if video_tags else labels.BACKGROUND
        return np.where(mask > 0, label, labels.BACKGROUND).astype(np.uint8)
