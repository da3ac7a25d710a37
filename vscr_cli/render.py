"""Pictures of stores for people: label maps in the A2D palette with a legend, edge maps with
segment boundaries, CAM heat maps; contact sheets (PNG) and videos (MP4 through PyAV).

Every picture function takes and returns (H, W, 3) uint8 RGB images; the encoders return a file's
bytes carrying a text record (a PNG's tEXt chunk, an MP4's comment) that says who made it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import av
import cv2
import numpy as np
import PIL.Image
import PIL.PngImagePlugin
from skimage.segmentation import find_boundaries

from vscr_cli import labels
from vscr_cli.store import MP4_RECORD_KEY, PNG_RECORD_KEY

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


def png_bytes(image: np.ndarray, record: str) -> bytes:
    """A PNG of ``image`` carrying ``record`` in its tEXt chunk :data:`PNG_RECORD_KEY`."""
    text = PIL.PngImagePlugin.PngInfo()
    text.add_text(PNG_RECORD_KEY, record)
    encoded = io.BytesIO()
    PIL.Image.fromarray(np.ascontiguousarray(image)).save(encoded, format="PNG", pnginfo=text)
    return encoded.getvalue()


def mp4_bytes(images: Sequence[np.ndarray], record: str, fps: int = 8) -> bytes:
    """An H.264 MP4 of images, each padded to the largest one's size rounded up to even sides,
    carrying ``record`` as its :data:`MP4_RECORD_KEY` metadata."""
    height = (max(image.shape[0] for image in images) + 1) // 2 * 2
    width = (max(image.shape[1] for image in images) + 1) // 2 * 2
    encoded = io.BytesIO()
    with av.open(encoded, "w", format="mp4") as container:
        container.metadata[MP4_RECORD_KEY] = record
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for number, image in enumerate(images):
            even = np.pad(image, ((0, height - image.shape[0]), (0, width - image.shape[1]), (0, 0)))
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return encoded.getvalue()
