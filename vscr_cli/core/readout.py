"""Reading classes off a trained pixel embedding by prototype retrieval (SPML's k-NN readout).

SPML (Ke et al., ICLR 2021) does not stop at the softmax head trained with the embedding: it
clusters the trained embedding of every labelled training image, keeps one prototype per
segment with the segment's pseudo-label (a *prototype bank*), and labels a new image by
clustering its embedding the same way and letting each segment's ``k`` nearest prototypes
(cosine similarity) vote. The same votes, restricted to an image's tags, refine the training
labels on which the softmax head is then retrained with the embedding frozen.

Everything here works on embeddings at the network's stride, (B, D, h, w) L2-normalised, and
class indices 0..C-1 (0 = background, -1 = unlabelled). No file I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vscr_cli.core.kmeans import cluster_embeddings
from vscr_cli.core.losses import segment_prototypes
from vscr_cli.core.params import ITERATIONS, NEIGHBOURS

#: Embedding cells per k-means cell side at inference: SPML's 12x12 grid on 512-px crops at stride 8 gives about 5.
CELLS_PER_SEGMENT = 5


def inference_grid(height: int, width: int, cells: int = CELLS_PER_SEGMENT) -> tuple[int, int]:
    """The k-means grid for an (h, w) embedding: about ``cells`` x ``cells`` embedding cells per initial segment."""
    return max(1, math.ceil(height / cells)), max(1, math.ceil(width / cells))


def segment_ids(embedding: torch.Tensor, iterations: int = ITERATIONS) -> torch.Tensor:
    """(B, D, h, w) unit embeddings -> (B, h, w) int64 segment ids from spherical k-means with
    location features (as SPML's inference), unique across the batch (image b's ids after image b-1's)."""
    batch, _, height, width = embedding.shape
    clusters = cluster_embeddings(embedding, grid=inference_grid(height, width), iterations=iterations)
    slots = int(clusters.max()) + 1
    return clusters + torch.arange(batch, device=clusters.device)[:, None, None] * slots


def _segment_means(embedding: torch.Tensor, segments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised mean embedding of each segment that holds a pixel: (S, D) and the (B, h, w) index into them."""
    rows = embedding.permute(0, 2, 3, 1).reshape(-1, embedding.shape[1]).float()
    present, inverse = torch.unique(segments.reshape(-1), return_inverse=True)
    return segment_prototypes(rows, inverse, len(present)), inverse.reshape(segments.shape)


@dataclass
class PrototypeBank:
    """Labelled segment prototypes of the training frames: ``prototypes`` (M, D) unit rows,
    ``labels`` (M,) int64 class indices."""

    prototypes: torch.Tensor
    labels: torch.Tensor

    @staticmethod
    def cat(banks: list[PrototypeBank]) -> PrototypeBank:
        return PrototypeBank(torch.cat([b.prototypes for b in banks]), torch.cat([b.labels for b in banks]))

    def __len__(self) -> int:
        return len(self.labels)


def label_prototypes(embedding: torch.Tensor, labels: torch.Tensor) -> PrototypeBank:
    """The bank of labelled frames: (B, D, h, w) embeddings, (B, h, w) int64 class indices (-1 =
    unlabelled). Each k-means segment is split by label (a segment = cluster AND class, as in
    training); one prototype per part with a label."""
    segments = segment_ids(embedding)
    known = labels >= 0
    classes = int(labels.max()) + 2 if known.any() else 1
    parts = torch.where(known, segments * classes + labels, -1)
    prototypes, _ = _segment_means(embedding, parts)
    part_ids = torch.unique(parts.reshape(-1))  # the rows of ``prototypes``, in order
    keep = part_ids >= 0
    return PrototypeBank(prototypes[keep], part_ids[keep] % classes)


def class_votes(allowed: torch.Tensor) -> torch.Tensor:
    """(C,) bool -> the (C,) int64 ``votes_for`` of :func:`knn_votes` that lets the prototypes of each
    allowed class vote for their own class and the others not at all (SPML's tag restriction)."""
    return torch.where(allowed, torch.arange(len(allowed), device=allowed.device), -1)


def knn_votes(embedding: torch.Tensor, bank: PrototypeBank, num_classes: int, neighbours: int = NEIGHBOURS, votes_for: torch.Tensor | None = None) -> torch.Tensor:
    """(B, D, h, w) unit embeddings -> (B, num_classes, h, w) vote fractions: each k-means segment of
    a frame takes the labels of its ``neighbours`` most similar bank prototypes (cosine), every
    pixel the votes of its segment. With ``votes_for`` ((num_classes,) int64) a prototype of class
    c votes for class ``votes_for[c]``, or not at all where that is -1 (:func:`class_votes`: SPML
    keeps an image's tagged classes)."""
    prototypes, labels = bank.prototypes.to(embedding.device), bank.labels.to(embedding.device)
    if votes_for is not None:
        target = votes_for.to(embedding.device)[labels]
        keep = target >= 0
        prototypes, labels = prototypes[keep], target[keep]
    if len(labels) == 0:  # nothing may vote: background
        votes = embedding.new_zeros(embedding.shape[0], num_classes, *embedding.shape[-2:])
        votes[:, 0] = 1
        return votes
    segment_rows, index = _segment_means(embedding, segment_ids(embedding))
    k = min(neighbours, len(labels))
    nearest = (segment_rows @ prototypes.float().T).topk(k, dim=1).indices  # (S, k)
    votes = F.one_hot(labels[nearest], num_classes).sum(1).float() / k  # (S, C)
    return votes[index].permute(0, 3, 1, 2)
