"""Batched spherical k-means on pixel embeddings (VSCR Sec. 3.2, after SPML/SegSort).

Every image of a batch is clustered on its own, all images at once:

* features: L2-normalised pixel embeddings, optionally concatenated with the pixel's
  (y, x) coordinates in [-0.5, 0.5] and re-normalised (SPML's location features), laid out
  as ``(B, N, D)`` with ``N = H * W`` pixels in row-major order;
* initial labels: a regular grid of ``grid_y x grid_x`` cells (cluster id ``y * grid_x + x``);
* EM for a fixed number of iterations: M-step = normalised mean of each cluster's features,
  E-step = arg-max of the dot product with the prototypes. A cluster that holds no pixel has
  no prototype and never wins an E-step; ignored pixels neither vote nor get a label (-1).

Cluster sums are one-hot batched matrix products and assignments a batched arg-max, so the
result is deterministic on CPU and CUDA (no atomic adds) and costs no Python loop over
images or clusters. Clustering takes no gradient; callers compute prototypes of the final
segments with gradients themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vscr_cli.core.params import ITERATIONS, TRAIN_GRID


def grid_labels(height: int, width: int, grid: tuple[int, int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Initial cluster id of every pixel, shape (H * W,) int64.

    The image is cut into ``grid = (grid_y, grid_x)`` cells of (nearly) equal size; pixel
    (y, x) starts in cell ``(y * grid_y // H) * grid_x + (x * grid_x // W)``.
    """
    grid_y, grid_x = grid
    if grid_y < 1 or grid_x < 1:
        raise ValueError(f"k-means grid must be at least 1x1, got {grid}")
    rows = torch.arange(height, device=device) * grid_y // height
    cols = torch.arange(width, device=device) * grid_x // width
    return (rows[:, None] * grid_x + cols[None, :]).reshape(-1)


def location_features(
    height: int, width: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Pixel coordinates (y, x), each spanning [-0.5, 0.5], shape (H * W, 2) (as SPML)."""
    ys = torch.linspace(0.0, 1.0, height, device=device, dtype=dtype) - 0.5
    xs = torch.linspace(0.0, 1.0, width, device=device, dtype=dtype) - 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_y.reshape(-1), grid_x.reshape(-1)], dim=1)


def pixel_rows(embeddings: torch.Tensor) -> torch.Tensor:
    """(B, D, H, W) embeddings as (B, H * W, D) rows (differentiable)."""
    return embeddings.flatten(2).transpose(1, 2)


def clustering_features(embeddings: torch.Tensor, use_location: bool = True) -> torch.Tensor:
    """Features that k-means clusters, shape (B, H * W, D + 2) or (B, H * W, D).

    `embeddings` (B, D, H, W) are expected L2-normalised along D. With `use_location`, the
    (y, x) coordinates are appended and each row is re-normalised. Differentiable: the edge
    term of the objective uses these features with gradients.
    """
    batch, _, height, width = embeddings.shape
    rows = pixel_rows(embeddings)
    if not use_location:
        return rows
    coords = location_features(height, width, embeddings.device, embeddings.dtype)
    rows = torch.cat([rows, coords.expand(batch, -1, -1)], dim=2)
    return F.normalize(rows, dim=2)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def spherical_kmeans(
    features: torch.Tensor,
    initial_labels: torch.Tensor,
    num_clusters: int,
    valid: torch.Tensor | None = None,
    iterations: int = ITERATIONS,
) -> torch.Tensor:
    """Cluster each image's pixels on the unit sphere, all images at once.

    Args:
        features: (B, N, D) unit-norm rows (see :func:`clustering_features`).
        initial_labels: (N,) or (B, N) int64 initial cluster ids in [0, num_clusters).
        num_clusters: K, the number of cluster slots per image.
        valid: (B, N) bool, False for pixels that take no part (default: all valid).
        iterations: EM iterations (each = M-step then E-step).

    Returns:
        (B, N) int64 cluster ids in [0, K), -1 where `valid` is False.
    """
    batch, pixels, _ = features.shape
    labels = initial_labels.to(features.device).expand(batch, pixels)
    valid = (
        torch.ones(batch, pixels, dtype=torch.bool, device=features.device)
        if valid is None
        else valid.to(features.device, torch.bool)
    )
    with torch.no_grad(), torch.autocast(features.device.type, enabled=False):
        features = features.detach().to(_compute_dtype(features.dtype))
        weight = valid.to(features.dtype).unsqueeze(2)  # (B, N, 1)
        members = features.new_empty(batch, pixels, num_clusters)
        for _ in range(iterations):
            members.zero_().scatter_(2, labels.unsqueeze(2), weight)  # (B, N, K) one-hot of valid pixels
            sums = torch.bmm(members.transpose(1, 2), features)  # (B, K, D)
            prototypes = F.normalize(sums, dim=2)
            empty = members.sum(dim=1) == 0  # (B, K)
            scores = torch.bmm(features, prototypes.transpose(1, 2))  # (B, N, K)
            labels = scores.masked_fill(empty.unsqueeze(1), float("-inf")).argmax(dim=2)
    return labels.masked_fill(~valid, -1)


def cluster_embeddings(
    embeddings: torch.Tensor,
    valid: torch.Tensor | None = None,
    grid: tuple[int, int] = TRAIN_GRID,
    iterations: int = ITERATIONS,
    use_location: bool = True,
) -> torch.Tensor:
    """Spherical k-means of (B, D, H, W) unit embeddings; returns (B, H, W) cluster ids (-1 = invalid).

    `valid` is (B, H, W) bool (default: all pixels). Convenience wrapper for callers that
    need only the partition (e.g. nearest-prototype inference).
    """
    batch, _, height, width = embeddings.shape
    features = clustering_features(embeddings.detach(), use_location)
    flat_valid = None if valid is None else valid.reshape(batch, height * width)
    labels = spherical_kmeans(
        features,
        grid_labels(height, width, grid, embeddings.device),
        grid[0] * grid[1],
        flat_valid,
        iterations,
    )
    return labels.reshape(batch, height, width)
