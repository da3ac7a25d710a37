"""Pictures of stores for people: label maps in the A2D palette with a legend, edge maps with
segment boundaries, CAM heat maps; contact sheets (PNG) and videos (MP4 through PyAV).

Every function takes and returns (H, W, 3) uint8 RGB images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import av
import cv2
import numpy as np
from skimage.segmentation import find_boundaries

from vscr_cli import labels
from vscr_cli.errors import VscrError

FONT = cv2.FONT_HERSHEY_SIMPLEX


def label_overlay(frame: np.ndarray, label_map: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """A2D label map (H, W) uint8 blended over the frame where it is not background."""
    colours = labels.colorize(label_map).astype(np.float32)
    blend = frame.astype(np.float32) * (1 - alpha) + colours * alpha
    out = np.where((label_map != labels.BACKGROUND)[..., None], blend, frame.astype(np.float32) * 0.7)
    return out.astype(np.uint8)


def edge_view(frame: np.ndarray, edge: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """The HED edge map (H, W) uint8 in grey with the segments' boundaries (H, W) int in yellow."""
    image = np.repeat(edge[..., None], 3, axis=2)
    image[find_boundaries(segments, mode="inner")] = (255, 220, 0)
    return image


def heat_overlay(frame: np.ndarray, activation: np.ndarray) -> np.ndarray:
    """A CAM (H, W) uint8 as a jet heat map blended over the frame."""
    heat = cv2.applyColorMap(activation, cv2.COLORMAP_JET)[..., ::-1]
    return (0.5 * frame.astype(np.float32) + 0.5 * heat).astype(np.uint8)


def titled(image: np.ndarray, title: str) -> np.ndarray:
    """The image with a one-line caption strip above it."""
    strip = np.full((18, image.shape[1], 3), 32, np.uint8)
    cv2.putText(strip, title, (4, 13), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return np.concatenate([strip, image])


def legend(label_ids: Iterable[int], height: int) -> np.ndarray:
    """A column naming the actor-action classes present, each with its palette colour."""
    present = sorted(set(int(i) for i in label_ids) & set(labels.VALID_IDS))
    panel = np.full((max(height, 20 * len(present) + 8), 170, 3), 255, np.uint8)
    for row, label_id in enumerate(present):
        top = 6 + 20 * row
        cv2.rectangle(panel, (6, top), (22, top + 14), tuple(int(c) for c in labels.PALETTE[label_id]), -1)
        cv2.putText(panel, labels.name_of(label_id), (28, top + 12), FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


def side_by_side(panels: Sequence[np.ndarray]) -> np.ndarray:
    """Panels of equal height next to each other, separated by a thin gap."""
    height = max(p.shape[0] for p in panels)
    gaps = [4] * (len(panels) - 1) + [0]
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, gap), (0, 0)), constant_values=255) for p, gap in zip(panels, gaps)]
    return np.concatenate(padded, axis=1)


def contact_sheet(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Rows (already side by side) stacked with a gap; rows narrower than the widest are padded."""
    width = max(r.shape[1] for r in rows)
    gaps = [4] * (len(rows) - 1) + [0]
    padded = [np.pad(r, ((0, gap), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r, gap in zip(rows, gaps)]
    return np.concatenate(padded)


@contextmanager
def _atomic_file(path: Path) -> Iterator[Path]:
    """A hidden sibling of ``path`` (same suffix) to write; moved onto ``path`` only when the block succeeds."""
    temporary = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_png(path: Path, image: np.ndarray) -> None:
    with _atomic_file(path) as temporary:
        if not cv2.imwrite(str(temporary), image[..., ::-1]):
            raise VscrError(f"{path}: cannot write PNG")


def write_mp4(path: Path, images: Sequence[np.ndarray], fps: int = 8) -> None:
    """H.264 video of images, each padded to the largest one's size rounded up to even sides."""
    height = (max(image.shape[0] for image in images) + 1) // 2 * 2
    width = (max(image.shape[1] for image in images) + 1) // 2 * 2
    with _atomic_file(path) as temporary, av.open(str(temporary), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for number, image in enumerate(images):
            even = np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
