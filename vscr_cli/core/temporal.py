"""Temporal fusion of class probabilities along optical flow.

A frame's class probabilities at the network's cells are averaged with those of its neighbouring
frames, each warped onto the frame along the dense flow from the frame to the neighbour (where a
cell of the frame moves to in the neighbour): what the network sees of an object on several frames
counts for it, and a frame where it misses part of the object borrows the others' evidence. A
neighbour votes only where its flow can be trusted: where the flow back from the neighbour returns to
the pixel it left (the forward-backward check of Sundaram, Brox and Keutzer, ECCV 2010), which fails
at occlusions and where the flow is lost in fast motion, and where it lands inside the neighbour's
frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F


def temporal_frames(selected: Sequence[int], window: int, total: int) -> list[int]:
    """The frames the network must see to fuse each of ``selected`` with its neighbours up to
    ``window`` frames away (within 0 .. total-1), in increasing order."""
    return sorted({n for t in selected for n in range(t - window, t + window + 1) if 0 <= n < total})


def neighbours(frame: int, window: int, available: Sequence[int] | set[int]) -> list[int]:
    """The frames within ``window`` of ``frame`` (not itself) among ``available``."""
    return [n for n in range(frame - window, frame + window + 1) if n != frame and n in available]


def lands_inside(x: np.ndarray | Tensor, y: np.ndarray | Tensor, rows: int, cols: int) -> np.ndarray | Tensor:
    """Where positions ``x``, ``y`` (arrays or tensors, in pixels or cells of a rows x cols grid) fall
    within the grid's outer pixels' extent (half a pixel beyond the outer centres): bool, same shape."""
    return (x >= -0.5) & (x <= cols - 0.5) & (y >= -0.5) & (y <= rows - 0.5)


#: The forward-backward check's tolerance: |w + w'|^2 < RELATIVE (|w|^2 + |w'|^2) + ABSOLUTE (pixels^2),
#: w the flow from the frame, w' the flow back from where it lands (Sundaram et al.'s values).
CONSISTENCY_RELATIVE, CONSISTENCY_ABSOLUTE = 0.01, 0.5


def consistent(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flows in pixels from a frame to a neighbour and back -> (H, W) bool: where the
    forward flow lands inside the neighbour and the backward flow read there returns to the pixel."""
    rows, cols = forward.shape[:2]
    xs, ys = np.meshgrid(np.arange(cols, dtype=np.float32), np.arange(rows, dtype=np.float32))
    x, y = xs + forward[..., 0], ys + forward[..., 1]
    back = cv2.remap(backward, x, y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    loop = ((forward + back) ** 2).sum(-1)
    return lands_inside(x, y, rows, cols) & (loop < CONSISTENCY_RELATIVE * ((forward**2).sum(-1) + (back**2).sum(-1)) + CONSISTENCY_ABSOLUTE)


def flow_to_cells(flow: np.ndarray, trusted: np.ndarray, cells: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """(H, W, 2) float32 flow in pixels of an (H, W) frame and its (H, W) bool trusted pixels ->
    the (h, w, 2) float32 flow in cells of an (h, w) grid over the same frame (the mean over each
    cell's trusted pixels, all of them where none is; displacements rescaled) and (h, w) float32:
    each cell's share of trusted pixels."""
    height, width = flow.shape[:2]
    rows, cols = cells
    weight = trusted.astype(np.float32)
    share = cv2.resize(weight, (cols, rows), interpolation=cv2.INTER_AREA)
    trusted_mean = cv2.resize(flow * weight[..., None], (cols, rows), interpolation=cv2.INTER_AREA) / np.maximum(share, 1e-6)[..., None]
    small = np.where((share > 0)[..., None], trusted_mean, cv2.resize(flow, (cols, rows), interpolation=cv2.INTER_AREA)).astype(np.float32)
    small[..., 0] *= cols / width
    small[..., 1] *= rows / height
    return torch.from_numpy(small), torch.from_numpy(share)


def warp(prob: Tensor, flow: Tensor) -> tuple[Tensor, Tensor]:
    """(C, h, w) probabilities of a neighbour and the (h, w, 2) flow in cells from the frame to it ->
    the neighbour's probabilities at each cell of the frame (C, h, w), bilinear, and (h, w) bool:
    where the flow lands inside the neighbour."""
    rows, cols = prob.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(rows, dtype=flow.dtype), torch.arange(cols, dtype=flow.dtype), indexing="ij")
    x, y = xs + flow[..., 0], ys + flow[..., 1]
    valid = lands_inside(x, y, rows, cols)
    grid = torch.stack([(x + 0.5) / cols * 2 - 1, (y + 0.5) / rows * 2 - 1], dim=-1)[None].to(prob)
    sampled = F.grid_sample(prob[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    return sampled, valid.to(prob.device)


def fused(prob: Tensor, others: Sequence[tuple[Tensor, Tensor, Tensor]]) -> Tensor:
    """A frame's (C, h, w) probabilities and, per neighbour, its (C, h, w) probabilities with the
    (h, w, 2) flow in cells from the frame to it and the (h, w) weight of its vote (the share of
    trusted pixels, :func:`flow_to_cells`) -> (C, h, w): at each cell the weighted mean of the frame's
    probabilities (weight 1) and the warped ones of the neighbours (0 where the flow leaves their frame)."""
    total, count = prob.clone(), torch.ones(prob.shape[-2:], dtype=prob.dtype, device=prob.device)
    for other, flow, weight in others:
        sampled, valid = warp(other, flow)
        weight = weight.to(prob) * valid
        total += sampled * weight
        count += weight
    return total / count
