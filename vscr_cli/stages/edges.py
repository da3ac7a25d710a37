"""Edge stage: HED edge probabilities and a hierarchical edge segmentation per frame.

The paper runs HED (BSDS500) then gPb-owt-ucm and cuts the ultrametric contour map (UCM)
at 0.9. Here the hierarchy is higra's hierarchical watershed by dynamics on the HED map
(4-adjacency, edge weight = mean HED probability of the two pixels); its altitudes,
divided by the frame's largest one, form a UCM in [0, 1], and the horizontal cut at
``threshold`` gives the regions. The default threshold was chosen on davis-dev by
achievable segmentation accuracy against region count (docs/edges.md, tools/edge_threshold_study.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import higra as hg
import numpy as np
import torch

from vscr_cli import console, weights
from vscr_cli.core.models.hed import HED
from vscr_cli.core.precision import autocast, dtype_name
from vscr_cli.settings.edges import DEFAULT_THRESHOLD, EdgeParams
from vscr_cli.video import FrameSelection, VideoSource
from vscr_cli.sources import discover
from vscr_cli.settings.run import Runtime
from vscr_cli.stages.runner import RunReport, VideoResult, VideoTask, frame_batches, write_per_video
from vscr_cli import schemas
from vscr_cli.schemas import EDGE, SEGMENTS

SCHEMA = schemas.EDGES


class EdgeDetector:
    """HED on a device, optionally under autocast: (B, H, W, 3) uint8 RGB -> (B, H, W) float32 in [0, 1]."""

    def __init__(self, state_dict: Mapping[str, torch.Tensor], device: torch.device, dtype: torch.dtype | None) -> None:
        self.device = device
        self.dtype = dtype
        self.model = HED()
        self.model.load_state_dict(state_dict)
        self.model.eval().to(device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        images = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float()
        images = images.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            probabilities = self.model(images)
        return probabilities[:, 0].float().cpu().numpy()


def load_edge_detector(weights_path: Path, weights_sha256: str, device: torch.device, dtype: torch.dtype | None) -> EdgeDetector:
    """HED from a local weights file (the sha256 only keys per-process caches of detectors)."""
    return EdgeDetector(weights.load_local_state_dict(weights_path), device, dtype)


@functools.lru_cache(maxsize=4)
def _pixel_graph(shape: tuple[int, int]) -> tuple[hg.UndirectedGraph, np.ndarray, np.ndarray]:
    graph = hg.get_4_adjacency_graph(shape)
    sources, targets = graph.edge_list()
    return graph, sources, targets


def ultrametric_contour_map(edge: np.ndarray) -> tuple[hg.Tree, np.ndarray]:
    """Hierarchy of an (H, W) uint8 edge map: (tree, altitudes scaled to [0, 1]).

    Hierarchical watershed by dynamics on the 4-adjacency graph, each pixel pair weighted by
    the sum (i.e. twice the mean) of its two edge values; the saliency of a contour is the
    altitude at which the two regions it separates merge. Working on the stored uint8 map
    makes a store's ``segments`` reproducible from its ``edge``.
    """
    graph, sources, targets = _pixel_graph(edge.shape)
    flat = edge.ravel()
    weights = flat[sources].astype(np.uint16) + flat[targets]
    tree, altitudes = hg.watershed_hierarchy_by_dynamics(graph, weights)
    top = float(altitudes.max())
    return tree, altitudes / top if top > 0 else altitudes.astype(np.float64)


def cut_segments(tree: hg.Tree, altitudes: np.ndarray, threshold: float, shape: tuple[int, int]) -> np.ndarray:
    """Regions of the horizontal cut at ``threshold``: (H, W) int32 ids 0..n-1 in raster order of first pixel."""
    leaves = hg.labelisation_horizontal_cut_from_threshold(tree, altitudes, threshold)
    _, first, inverse = np.unique(leaves, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))  # renumber so ids follow raster order
    return order[inverse].reshape(shape).astype(np.int32)


def edge_segments(edge: np.ndarray, threshold: float) -> np.ndarray:
    """(H, W) uint8 edge map -> (H, W) int32 region ids of the UCM cut at ``threshold``.

    A one-pixel frame has no pixel pairs to build a hierarchy on (higra crashes on an edgeless
    graph): it is one region.
    """
    if edge.size < 2:
        return np.zeros(edge.shape, np.int32)
    tree, altitudes = ultrametric_contour_map(edge)
    return cut_segments(tree, altitudes, threshold, edge.shape)


def video_edges(
    video: VideoSource,
    params: EdgeParams,
    detector: Callable[[np.ndarray], np.ndarray],
    batch_size: int,
    on_frames: Callable[[int], None] | None = None,
) -> VideoResult:
    """Edges of one video: ``edge`` (T, H, W) uint8 (probability x 255) and ``segments`` (T, H, W) int32."""
    selection = FrameSelection(**params.selection)
    indices = video.select(selection)
    edges: list[np.ndarray] = []
    for batch in frame_batches(video.read(indices, selection.height), batch_size, on_frames):
        edges.extend(np.round(detector(batch) * 255).astype(np.uint8))
    segments = [edge_segments(edge, params.threshold) for edge in edges]
    return VideoResult(indices, {EDGE: np.stack(edges), SEGMENTS: np.stack(segments)})


def run(
    sources: Sequence[str],
    output: Path | None,
    runtime: Runtime,
    threshold: float = DEFAULT_THRESHOLD,
    selection: FrameSelection = FrameSelection(),
    split: str = "all",
    batch_size: int = 4,
    weights_file: Path | None = None,
) -> RunReport:
    """``vscr edges``: the edges store of ``sources`` at ``output`` (None: zip bytes on stdout)."""
    device, dtype, options = runtime.device, runtime.dtype, runtime.options
    videos = discover(sources, a2d_split=split)
    weights_path = weights.resolve("hed-bsds500", weights_file)
    params = EdgeParams(
        threshold=threshold,
        weights_sha256=weights.sha256_file(weights_path),
        precision=dtype_name(dtype),
        selection=selection.to_json(),
    )
    compute = VideoTask(video_edges, "detector", load_edge_detector, (weights_path, params.weights_sha256, device, dtype), {"params": params, "batch_size": batch_size})
    console.log.info("HED on %s (%s), %d videos", device, params.precision, len(videos))
    inputs = {"sources": [str(s) for s in sources], "split": split}
    return write_per_video(output, SCHEMA.kind, params.to_json(), inputs, videos, selection, compute, options)
