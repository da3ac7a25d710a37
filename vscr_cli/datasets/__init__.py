"""Readers of datasets with ground truth: A2D Release (real or synthesised) and DAVIS-style folders."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import numpy as np

from vscr_cli.errors import SourceError, StoreError
from vscr_cli.sources import VideoSource, recorded_sources


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


def ground_truth_root(video: VideoSource) -> Path | None:
    """Where ``video``'s ground truth is, judging by its path, or None.

    An A2D clip ``Release/clips320H/<id>.mp4`` has it in that Release; a video ``DIR/<id>.mp4``
    or frame folder ``DIR/<id>[/frames]`` has it in ``DIR`` when ``DIR`` is DAVIS-style:
    ``DIR/<id>/masks/`` and ``DIR/tags.csv``.
    """
    from vscr_cli.datasets.a2d import find_release_root

    path = video.path.absolute()
    if path.parent.name == "clips320H" and (release := find_release_root(path.parent.parent)) is not None:
        return release
    for folder in (path.parent, path.parent.parent):
        if (folder / video.video_id / "masks").is_dir() and (folder / "tags.csv").is_file():
            return folder
    return None


def recorded_ground_truth(location: str, inputs: Mapping) -> Path:
    """The one dataset holding the ground truth of every video a store's record names as its
    sources (through the stores it was made from); a :class:`StoreError` naming ``location`` when
    a video has none, they point to several, or the sources are gone."""
    try:
        videos = recorded_sources(inputs)
    except SourceError as error:
        raise StoreError(f"{location}: cannot follow its recorded sources to ground truth ({error}); pass --gt") from error
    roots: list[Path] = []
    for video in videos:
        root = ground_truth_root(video)
        if root is None:
            raise StoreError(
                f"{location}: its source {video.path} holds no ground truth for video {video.video_id!r} "
                "(an A2D Release, or <id>/masks and tags.csv beside it); pass --gt"
            )
        if root not in roots:
            roots.append(root)
    if len(roots) > 1:
        raise StoreError(f"{location}: its sources point to several ground truths ({', '.join(map(str, roots))}); pass --gt")
    return roots[0]
