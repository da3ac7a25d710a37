"""The inputs of training and of what continues it (vscr train, vscr refine): an edges and a cam
store of the same frames, the videos they were made from and the videos' tags, checked to agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from vscr_cli.datasets import load_tags
from vscr_cli.errors import VscrError
from vscr_cli.sources import discover, recorded_sources
from vscr_cli.schemas import CAMS, EDGES, LABEL, PREDICTIONS, PSEUDO
from vscr_cli.store import Store, check_same_frames, open_store
from vscr_cli.tags import require_tags
from vscr_cli.video import VideoSource


@dataclass
class TrainingVideo:
    video_id: str
    frame_index: np.ndarray  # (T,) frames with edges and CAM
    total_frames: int
    tags: tuple[int, ...]
    labeled: np.ndarray  # (T,) bool: frame is in D_c


@dataclass
class TrainingData:
    """The stores, sources and tags training reads (checked to agree). ``cams`` is a cam store, or
    a pred store whose labels stand in for the pseudo-labels (a self-training round)."""

    edges: Store
    cams: Store
    sources: dict[str, VideoSource]
    videos: list[TrainingVideo]
    height: int | None

    @property
    def pseudo_name(self) -> str:
        """The array of ``cams`` that holds the labels the network learns from."""
        return PSEUDO if self.cams.record.kind == CAMS.kind else LABEL

    def pseudo(self, video_id: str) -> np.ndarray:
        """(T, H, W) uint8 A2D ids the network learns from (IGNORE: no label)."""
        return self.cams.read(video_id, self.pseudo_name)

    @property
    def samples(self) -> list[tuple[int, int]]:
        """(video, position) of every training frame."""
        return [(v, t) for v, video in enumerate(self.videos) for t in range(len(video.frame_index))]


def open_training_data(
    edges_location: str,
    cam_location: str,
    sources: Mapping[str, VideoSource],
    tags: Mapping[str, tuple[int, ...]],
    labeled_fraction: float = 1.0,
) -> TrainingData:
    """Open and cross-check the stores; D_c frames are those of CAM-labeled videos (thinned by
    ``labeled_fraction``); in a pred store every video is labeled (its labels were decoded among
    its tags: background where it has none)."""
    edges = open_store(edges_location, EDGES.kind)
    cams = open_store(cam_location, (CAMS.kind, PREDICTIONS.kind))
    check_same_frames(edges, cams)
    missing = [v for v in edges.videos if v not in sources]
    if missing:
        raise VscrError(f"{edges.location}: no video source given for {', '.join(missing[:5])}")
    heights = {store.record.frame_height for store in (edges, cams)}
    if len(heights) != 1:
        raise VscrError(f"{edges.location} and {cams.location} were made at different --height")
    videos = []
    for video_id in edges.videos:
        index = edges.frame_index(video_id)
        labeled = np.zeros(len(index), bool)
        if cams.record.kind == PREDICTIONS.kind or cams.video_attrs(video_id).get("labeled"):
            keep = max(1, round(labeled_fraction * len(index)))
            labeled[np.linspace(0, len(index) - 1, keep).round().astype(int)] = True  # evenly through the video
        videos.append(TrainingVideo(video_id, index, sources[video_id].count_frames(), tuple(tags.get(video_id, ())), labeled))
    return TrainingData(edges, cams, dict(sources), videos, heights.pop())


@contextlib.contextmanager
def open_training_inputs(
    edges: str, cam: str, sources: Sequence[str] | None = None, tags: str | None = None, labeled_fraction: float = 1.0
) -> Iterator[TrainingData]:
    """The training data of an edges and a cam store (closed afterwards).

    ``sources`` default to those the edges store records; ``tags`` (a CSV or A2D root) to the
    tags the cam store records per video.
    """
    if sources:
        videos = discover(sources)
    else:
        with open_store(edges, EDGES.kind) as store:
            videos = recorded_sources(store.record.inputs)
    with open_store(cam, (CAMS.kind, PREDICTIONS.kind)) as store:
        if store.record.kind == PREDICTIONS.kind and not tags:
            raise VscrError(f"{cam}: a pred store records no tags: pass --tags")
        video_tags = load_tags(tags) if tags else {v: tuple(store.video_attrs(v).get("tags", ())) for v in store.videos}
        require_tags(store.videos, video_tags, tags or cam)
    data = open_training_data(edges, cam, {v.video_id: v for v in videos}, video_tags, labeled_fraction)
    try:
        yield data
    finally:
        data.edges.close()
        data.cams.close()
