"""Tests of the batched spherical k-means (vscr_cli.core.kmeans)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vscr_cli.core.kmeans import (
    cluster_embeddings,
    clustering_features,
    grid_labels,
    location_features,
    spherical_kmeans,
)

from .reference import reference_features, reference_kmeans


def unit_embeddings(batch: int, dim: int, height: int, width: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(batch, dim, height, width, generator=generator, dtype=dtype), dim=1)


def test_grid_labels_cut_the_image_into_equal_cells():
    labels = grid_labels(6, 9, (2, 3)).reshape(6, 9)
    expected = torch.tensor([[0] * 3 + [1] * 3 + [2] * 3] * 3 + [[3] * 3 + [4] * 3 + [5] * 3] * 3)
    assert torch.equal(labels, expected)
    counts = torch.bincount(grid_labels(56, 56, (6, 6)), minlength=36)
    assert counts.min() >= 81 and counts.max() <= 100 and counts.sum() == 56 * 56


def test_grid_larger_than_image_leaves_cells_empty():
    assert grid_labels(2, 2, (3, 3)).tolist() == [0, 1, 3, 4]
    with pytest.raises(ValueError):
        grid_labels(4, 4, (0, 2))


def test_location_features_span_minus_half_to_half():
    coords = location_features(3, 5).reshape(3, 5, 2)
    assert torch.allclose(coords[:, 0, 0], torch.tensor([-0.5, 0.0, 0.5]))
    assert torch.allclose(coords[0, :, 1], torch.tensor([-0.5, -0.25, 0.0, 0.25, 0.5]))


@pytest.mark.parametrize("use_location", [True, False])
def test_clustering_features_match_reference_and_are_unit(use_location):
    embeddings = unit_embeddings(2, 4, 3, 5, seed=1)
    features = clustering_features(embeddings, use_location)
    expected = torch.stack([torch.stack(image) for image in reference_features(embeddings, use_location)])
    assert torch.allclose(features, expected, atol=1e-12)
    assert torch.allclose(features.norm(dim=2), torch.ones(2, 15, dtype=torch.float64))


@pytest.mark.parametrize(
    ("grid", "iterations", "use_location", "seed"),
    [((2, 3), 10, True, 0), ((3, 3), 10, False, 1), ((2, 2), 3, True, 2), ((4, 4), 10, True, 3), ((2, 2), 0, True, 4)],
)
def test_kmeans_labels_identical_to_reference(grid, iterations, use_location, seed):
    batch, height, width = 3, 7, 8
    embeddings = unit_embeddings(batch, 5, height, width, seed)
    generator = torch.Generator().manual_seed(seed)
    valid = torch.rand(batch, height, width, generator=generator) > 0.2
    valid[2] = False  # an all-ignored image
    labels = cluster_embeddings(embeddings, valid, grid, iterations, use_location)
    expected = reference_kmeans(
        reference_features(embeddings, use_location), valid, height, width, grid, iterations
    )
    assert torch.equal(labels, expected)
    assert (labels[~valid] == -1).all() and (labels[valid] >= 0).all()


def test_batching_does_not_change_any_image():
    embeddings = unit_embeddings(4, 6, 9, 9, seed=5, dtype=torch.float32)
    valid = torch.rand(4, 9, 9, generator=torch.Generator().manual_seed(5)) > 0.1
    together = cluster_embeddings(embeddings, valid, (3, 3))
    alone = torch.cat([cluster_embeddings(embeddings[b : b + 1], valid[b : b + 1], (3, 3)) for b in range(4)])
    assert torch.equal(together, alone)
    assert torch.equal(together, cluster_embeddings(embeddings, valid, (3, 3)))  # deterministic


def test_ignored_pixels_do_not_influence_the_clusters():
    embeddings = unit_embeddings(2, 6, 8, 8, seed=6)
    valid = torch.ones(2, 8, 8, dtype=torch.bool)
    valid[:, :3, :] = False
    changed = embeddings.clone()
    changed[:, :, :3, :] = unit_embeddings(2, 6, 3, 8, seed=7)
    assert torch.equal(cluster_embeddings(embeddings, valid, (2, 2)), cluster_embeddings(changed, valid, (2, 2)))


def test_separated_directions_are_recovered_from_a_wrong_start():
    # Left 3 columns point along e0, the rest along e1 (plus noise); the 1x2 grid starts
    # with the boundary at column 4, k-means must move it to column 3.
    generator = torch.Generator().manual_seed(8)
    embeddings = torch.zeros(1, 4, 6, 8)
    embeddings[0, 0, :, :3] = 1.0
    embeddings[0, 1, :, 3:] = 1.0
    embeddings = F.normalize(embeddings + 0.05 * torch.randn(1, 4, 6, 8, generator=generator), dim=1)
    labels = cluster_embeddings(embeddings, grid=(1, 2), use_location=False)
    assert (labels[0, :, :3] == 0).all() and (labels[0, :, 3:] == 1).all()
    assert torch.equal(
        spherical_kmeans(clustering_features(embeddings, False), grid_labels(6, 8, (1, 2)), 2, iterations=0),
        grid_labels(6, 8, (1, 2)).reshape(1, -1),
    )


def test_float32_agrees_with_float64_and_accepts_bfloat16():
    embeddings = unit_embeddings(3, 16, 12, 12, seed=9)
    exact = cluster_embeddings(embeddings)
    single = cluster_embeddings(embeddings.float())
    assert (exact == single).float().mean() > 0.99
    assert cluster_embeddings(embeddings.bfloat16()).dtype == torch.long


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    embeddings = unit_embeddings(4, 32, 28, 28, seed=10, dtype=torch.float32)
    valid = torch.rand(4, 28, 28, generator=torch.Generator().manual_seed(10)) > 0.1
    cpu = cluster_embeddings(embeddings, valid)
    cuda = cluster_embeddings(embeddings.cuda(), valid.cuda()).cpu()
    assert (cpu == cuda).float().mean() > 0.999
    assert torch.equal(cuda, cluster_embeddings(embeddings.cuda(), valid.cuda()).cpu())
