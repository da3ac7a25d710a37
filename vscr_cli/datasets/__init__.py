"""Readers of datasets with ground truth: A2D Release (real or synthesised) and DAVIS-style folders."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from vscr_cli.datasets.a2d import A2DRelease, find_release_root
from vscr_cli.datasets.davis import DavisFolder
from vscr_cli.errors import SourceError, TagError
from vscr_cli.tags import Tags, read_tags_csv


class GroundTruth(Protocol):
    """Per-frame A2D label maps of a dataset, for scoring and for measuring pseudo-labels."""

    def videos(self, split: str = "all") -> list[str]: ...

    def labeled_frames(self, video_id: str) -> tuple[int, ...]:
        """0-based frame numbers with ground truth."""
        ...

    def label_map(self, video_id: str, frame: int) -> np.ndarray:
        """(H, W) uint8 A2D ids of one frame (0 background, 255 ignore)."""
        ...


def open_ground_truth(path: str | Path, dense: bool = False) -> GroundTruth:
    """Open an A2D Release root (``dense`` uses vscr synth's every-frame maps) or a DAVIS-style folder."""
    root = Path(path)
    if find_release_root(root) is not None:
        return A2DRelease(root, dense=dense)
    if root.is_dir():
        return DavisFolder(root)
    raise SourceError(f"{path}: not an A2D Release root or a DAVIS-style folder")


def load_tags(spec: str | Path) -> Tags:
    """Tags from a CSV file or an A2D Release root."""
    path = Path(spec)
    if path.is_dir():
        root = find_release_root(path)
        if root is None:
            raise TagError(f"{path}: a tags folder must be an A2D Release root (no videoset.csv)")
        release = A2DRelease(root)
        return {video: release.tags(video) for video in release.videos()}
    return read_tags_csv(path)
