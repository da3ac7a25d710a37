"""Readers of datasets with ground truth: A2D Release (real or synthesised) and DAVIS-style folders."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from vscr_cli.errors import SourceError


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
    from vscr_cli.datasets.a2d import A2DRelease, find_release_root
    from vscr_cli.datasets.davis import DavisFolder

    root = Path(path)
    if find_release_root(root) is not None:
        return A2DRelease(root, dense=dense)
    if root.is_dir():
        return DavisFolder(root)
    raise SourceError(f"{path}: not an A2D Release root or a DAVIS-style folder")
