"""VSCR's unified pixel-to-segment contrastive objective (paper Sec. 3.2-3.3, Eq. 1-4).

Input conventions (one batch of B frames; label maps already resized, nearest, to the
embedding resolution H x W):

* ``embeddings`` (B, D, H, W) float, L2-normalised along D (the model's head normalises).
* ``edge_regions`` (B, H, W) int64: edge-segmentation region id per image, >= 0; -1 marks a
  pixel without a region (it is clustered and joins the CAM and tag terms, not the edge term).
* ``cam_labels`` (B, H, W) int64: CAM pseudo-label class index (>= 0, e.g. 0 = background);
  -1 = no CAM for this pixel. Pixels of unlabeled frames are treated as -1 whatever the map says.
* ``tags`` (B, T) float multi-hot video tags (T = 43 for A2D). A frame whose vector is all
  zero has no tags and takes no part in the tag term.
* ``labeled`` (B,) bool: the frame belongs to D_c (it has a CAM pseudo-label); False = D_u.
* ``ignore`` (B, H, W) bool, optional: pixels removed from everything (padding, void).

Segments: per image, spherical k-means (:mod:`vscr_cli.core.kmeans`) on the embeddings with
location features; a segment is a k-means cluster AND an edge region AND a CAM label. Each
term computes normalised-mean prototypes of its segments *with* gradients.

Loss kernel (SPML's "segsort+" NCA): for pixel i with own segment s_i, label-positive
prototypes P_i and negatives N_i,
``loss_i = -log( sum_{j in P_i \\ {s_i}} e^{k v_i.mu_j} / sum_{j in (P_i \\ {s_i}) u N_i} e^{k v_i.mu_j} )``,
falling back to ``P_i = {s_i}`` when the pixel's own segment is its only positive. Other
prototypes (outside the term's scope) are neither. Positives and negatives are given per
pixel *group* (CAM class, frame, or frame x edge region), so the sums over each set are one
matrix product of the exponentials with a small (groups x prototypes) relation matrix. The
exponentials are shifted by k |v_i| (log-sum-exp style: all in [e^{-2k}, 1]), evaluated in
pixel chunks, and the hand-written backward recomputes them, so the (pixels x prototypes)
matrix is never held whole.

Terms (Eq. 4: ``L = 1[D_c] a_c L_cam + 1[D_c u D_u] (a_e L_edge + a_t L_tag)``):

* edge (k_e = 16, a_e = 0.3): per image; label = edge region; features = embedding + location
  (as SPML); mean over each image's pixels, then over images.
* CAM (k_c = 6, a_c = 0.3): batch-wide plus a detached :class:`PrototypeMemory` of recent
  iterations; label = CAM class; only CAM-labelled pixels and segments of D_c frames.
* tag (k_t = 8, a_t = 0.1): batch-wide plus its own detached memory of recent iterations'
  segments and their frames' tags (as SPML's semantic co-occurrence term reads its memory
  bank); positive = the tag vectors overlap; every pixel of a tagged frame, D_c and D_u alike.

Besides Eq. 4, :func:`action_tag_loss` trains the action branch's head on the frames' action tags.

Everything runs in float32 (float64 when given float64) with autocast disabled inside, so
it can be called from bf16/fp16 autocast regions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vscr_cli.core.kmeans import (
    clustering_features,
    grid_labels,
    pixel_rows,
    spherical_kmeans,
)
from vscr_cli.core.params import ObjectiveConfig

#: Logits evaluated at once by the contrastive kernel (pixels x prototypes per chunk).
CHUNK_ELEMENTS = 1 << 21
#: Largest concentration evaluated in float32: e^{-2k} must stay a normal float32.
MAX_FLOAT32_CONCENTRATION = 40.0


class PrototypeMemory:
    """Detached prototypes and their labels from the last `capacity` iterations.

    Flat layout: ``prototypes`` (M, D), ``labels`` (M,) or (M, T) int64 (a CAM class, or a
    multi-hot tag vector) and ``sizes`` (n,) int64 (CPU) = prototypes contributed by each
    stored iteration, oldest first. The training loop owns one instance per term, calls
    :meth:`update` with :attr:`ObjectiveTerms.cam_prototypes` / ``cam_labels`` (or
    ``tag_prototypes`` / ``tag_labels``) after each step (gathered across processes first when
    distributed), and saves/restores it with :meth:`state_dict` / :meth:`load_state_dict` for
    exact resume.
    """

    def __init__(self, capacity: int = 2) -> None:
        if capacity < 0:
            raise ValueError(f"memory capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self.prototypes = torch.empty(0, 0)
        self.labels = torch.empty(0, dtype=torch.long)
        self.sizes = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.labels.shape[0]

    def update(self, prototypes: torch.Tensor, labels: torch.Tensor) -> None:
        """Append one iteration's (M, D) prototypes and (M, ...) labels; forget the oldest beyond capacity."""
        prototypes = prototypes.detach()
        labels = labels.detach().to(device=prototypes.device, dtype=torch.long)
        sizes = torch.cat([self.sizes, torch.tensor([labels.shape[0]])])
        if len(self):
            prototypes = torch.cat([self.prototypes.to(prototypes), prototypes])
            labels = torch.cat([self.labels.to(labels.device), labels])
        self._keep_recent(prototypes, labels, sizes)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors only: ``prototypes``, ``labels``, ``sizes``."""
        return {"prototypes": self.prototypes, "labels": self.labels, "sizes": self.sizes}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (trimmed to this memory's capacity)."""
        prototypes, labels = state["prototypes"].detach(), state["labels"].to(torch.long)
        sizes = state["sizes"].to("cpu", torch.long)
        if int(sizes.sum()) != labels.shape[0] or prototypes.shape[0] != labels.shape[0]:
            raise ValueError("inconsistent prototype memory state: sizes, labels and prototypes disagree")
        self._keep_recent(prototypes, labels, sizes)

    def _keep_recent(self, prototypes: torch.Tensor, labels: torch.Tensor, sizes: torch.Tensor) -> None:
        excess = max(0, sizes.numel() - self.capacity)
        dropped = int(sizes[:excess].sum())
        self.prototypes = prototypes[dropped:].clone()
        self.labels = labels[dropped:].clone()
        self.sizes = sizes[excess:].clone()


@dataclass
class Segments:
    """The batch's segments: k-means cluster x edge region x CAM label, per image.

    Pixel fields cover the valid pixels only, image-major: ``pixel_index`` (P,) flat index
    into B * H * W, ``pixel_image`` (P,) its frame, ``segment`` (P,) segment id in [0, S).
    Segment fields (S,), sorted by
    image: ``segment_image``, ``segment_edge``, ``segment_cam``. ``clusters`` (B, H, W) holds
    the k-means ids (-1 = ignored pixel).
    """

    pixel_index: torch.Tensor
    pixel_image: torch.Tensor
    segment: torch.Tensor
    segment_image: torch.Tensor
    segment_edge: torch.Tensor
    segment_cam: torch.Tensor
    clusters: torch.Tensor

    @property
    def num_segments(self) -> int:
        return self.segment_image.numel()


@dataclass
class ObjectiveTerms:
    """Weighted total and the unweighted terms (scalars), plus the CAM and tag prototypes for the memories."""

    total: torch.Tensor
    edge: torch.Tensor
    cam: torch.Tensor
    tag: torch.Tensor
    #: (M, D) detached CAM prototypes of this batch and their (M,) labels: feed PrototypeMemory.update.
    cam_prototypes: torch.Tensor
    cam_labels: torch.Tensor
    #: (N, D) detached prototypes of this batch's tagged frames' segments and their (N, T) tags.
    tag_prototypes: torch.Tensor
    tag_labels: torch.Tensor
    segments: Segments


def form_segments(
    clusters: torch.Tensor, edge_regions: torch.Tensor, cam_labels: torch.Tensor, valid: torch.Tensor
) -> Segments:
    """Intersect k-means clusters with edge regions and CAM labels, all (B, H, W), per image."""
    batch = clusters.shape[0]
    pixel_index = valid.reshape(-1).nonzero().squeeze(1)
    image = pixel_index // (valid.shape[1] * valid.shape[2])
    cluster = clusters.reshape(-1)[pixel_index]
    edge = edge_regions.reshape(-1)[pixel_index]
    cam = cam_labels.reshape(-1)[pixel_index]
    # Mixed-radix key (image, cluster, edge + 1, cam + 1); radices from the data, >= 1.
    cluster_radix = int(cluster.max()) + 1 if cluster.numel() else 1
    edge_radix = int(edge.max()) + 2 if edge.numel() else 1
    cam_radix = int(cam.max()) + 2 if cam.numel() else 1
    if batch * cluster_radix * edge_radix * cam_radix >= 2**62:
        raise ValueError("too many distinct edge regions / CAM classes to index segments")
    key = ((image * cluster_radix + cluster) * edge_radix + edge + 1) * cam_radix + cam + 1
    segment_keys, segment = torch.unique(key, return_inverse=True)
    return Segments(
        pixel_index=pixel_index,
        pixel_image=image,
        segment=segment,
        segment_image=segment_keys // (cluster_radix * edge_radix * cam_radix),
        segment_edge=(segment_keys // cam_radix) % edge_radix - 1,
        segment_cam=segment_keys % cam_radix - 1,
        clusters=clusters,
    )


def segment_prototypes(rows: torch.Tensor, segment: torch.Tensor, num_segments: int) -> torch.Tensor:
    """Normalised mean of (P, D) `rows` per `segment` id (P,) -> (num_segments, D), differentiable."""
    sums = rows.new_zeros(num_segments, rows.shape[1]).index_add(0, segment, rows)
    return F.normalize(sums, dim=1)


@dataclass
class _Chunk:
    """A run of pixels evaluated together and the prototypes and relation rows it needs."""

    rows: slice
    #: (s,) prototype indices involved with the chunk, or None for all of them.
    cols: torch.Tensor | None
    #: (2 g, s) float: row r < g marks the positives of the chunk's r-th group, row g + r its negatives.
    relation: torch.Tensor
    #: (n,) each pixel's group among the chunk's g groups.
    local_group: torch.Tensor
    #: (n,) column of each pixel's own segment within the chunk's prototypes.
    own: torch.Tensor
    #: (n,) bool: the own segment is the pixel's only positive (SPML's fallback numerator).
    fallback: torch.Tensor


def _plan_chunks(
    own_segment: torch.Tensor,
    pixel_group: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    dtype: torch.dtype,
) -> list[_Chunk]:
    num_pixels, num_prototypes = own_segment.numel(), positive.shape[1]
    involved = positive | negative
    fallback = positive.sum(1)[pixel_group] == 1
    position = torch.full((num_prototypes,), -1, dtype=torch.long, device=positive.device)
    step = max(1, CHUNK_ELEMENTS // max(1, num_prototypes))
    chunks = []
    for start in range(0, num_pixels, step):
        rows = slice(start, min(start + step, num_pixels))
        groups, local_group = torch.unique(pixel_group[rows], return_inverse=True)
        needed = involved[groups].any(0)
        relation = torch.cat([positive[groups], negative[groups]])
        if bool(needed.all()):
            cols, own = None, own_segment[rows]
        else:
            cols = needed.nonzero().squeeze(1)
            relation = relation[:, cols]
            position[cols] = torch.arange(cols.numel(), device=cols.device)
            own = position[own_segment[rows]]
        chunks.append(_Chunk(rows, cols, relation.to(dtype), local_group, own, fallback[rows]))
    return chunks


def _shifted_exp(pixels: torch.Tensor, prototypes: torch.Tensor, concentration: float) -> torch.Tensor:
    """exp(k v_i.mu_j - k |v_i|), all in (0, 1] for unit prototypes; (n, s)."""
    shift = pixels.norm(dim=1, keepdim=True).mul_(-concentration)
    return torch.addmm(shift, pixels, prototypes.T, alpha=concentration).exp_()


def _chunk_exps(
    chunk: _Chunk, pixels: torch.Tensor, prototypes: torch.Tensor, concentration: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(chunk prototypes, shifted exps (n, s) with the own column zeroed, own exps (n,))."""
    chunk_prototypes = prototypes if chunk.cols is None else prototypes[chunk.cols]
    exps = _shifted_exp(pixels[chunk.rows], chunk_prototypes, concentration)
    own = chunk.own.unsqueeze(1)
    own_exp = exps.gather(1, own).squeeze(1)
    return chunk_prototypes, exps.scatter_(1, own, 0.0), own_exp


class _PixelToSegmentNLL(torch.autograd.Function):
    """Per-pixel contrastive NLL; see :func:`relation_contrastive_nll`."""

    @staticmethod
    def forward(ctx, pixels, prototypes, own_segment, pixel_group, positive, negative, concentration):
        chunks = _plan_chunks(own_segment, pixel_group, positive, negative, pixels.dtype)
        numerators = pixels.new_empty(own_segment.numel())
        negatives = pixels.new_empty(own_segment.numel())
        for chunk in chunks:
            _, exps, own_exp = _chunk_exps(chunk, pixels, prototypes, concentration)
            sums = exps @ chunk.relation.T  # (n, 2 g): other positives and negatives of each chunk group
            groups = chunk.relation.shape[0] // 2
            other_positive = sums.gather(1, chunk.local_group.unsqueeze(1)).squeeze(1)
            numerators[chunk.rows] = torch.where(chunk.fallback, own_exp, other_positive)
            negatives[chunk.rows] = sums.gather(1, (chunk.local_group + groups).unsqueeze(1)).squeeze(1)
        ctx.save_for_backward(pixels, prototypes, numerators, negatives)
        ctx.chunks, ctx.concentration = chunks, concentration
        # -log(num / (num + neg)); both sums carry the same shift, which cancels.
        return torch.log1p(negatives / numerators)

    @staticmethod
    def backward(ctx, grad_losses):
        pixels, prototypes, numerators, negatives = ctx.saved_tensors
        need_pixels, need_prototypes = ctx.needs_input_grad[:2]
        grad_pixels = torch.zeros_like(pixels) if need_pixels else None
        grad_prototypes = torch.zeros_like(prototypes) if need_prototypes else None
        # d loss_i / d logit_ij = e_ij / den_i on the denominator set minus e_ij / num_i on the
        # numerator set: e_ij * (positive_coefficient_i * [j in num] + negative_coefficient_i * [j in neg]).
        denominators = numerators + negatives
        scale = grad_losses * ctx.concentration
        positive_coefficient = -negatives / (numerators * denominators) * scale
        negative_coefficient = scale / denominators
        for chunk in ctx.chunks:
            chunk_prototypes, exps, own_exp = _chunk_exps(chunk, pixels, prototypes, ctx.concentration)
            groups = chunk.relation.shape[0] // 2
            coefficients = exps.new_zeros(exps.shape[0], 2 * groups)
            coefficients.scatter_(1, chunk.local_group.unsqueeze(1), positive_coefficient[chunk.rows, None])
            coefficients.scatter_(1, (chunk.local_group + groups).unsqueeze(1), negative_coefficient[chunk.rows, None])
            weights = (coefficients @ chunk.relation).mul_(exps)
            own_weight = torch.where(chunk.fallback, positive_coefficient[chunk.rows] * own_exp, 0.0)
            weights.scatter_add_(1, chunk.own.unsqueeze(1), own_weight.unsqueeze(1))
            if need_pixels:
                grad_pixels[chunk.rows] = weights @ chunk_prototypes
            if need_prototypes:
                chunk_grad = weights.T @ pixels[chunk.rows]
                if chunk.cols is None:
                    grad_prototypes += chunk_grad
                else:
                    grad_prototypes.index_add_(0, chunk.cols, chunk_grad)
        return grad_pixels, grad_prototypes, None, None, None, None, None


def relation_contrastive_nll(
    pixels: torch.Tensor,
    prototypes: torch.Tensor,
    own_segment: torch.Tensor,
    pixel_group: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    concentration: float,
) -> torch.Tensor:
    """Pixel-to-segment contrastive NLL per pixel, shape (P,).

    Args:
        pixels: (P, D) unit rows v_i.
        prototypes: (S, D) unit rows mu_j.
        own_segment: (P,) index in [0, S) of each pixel's own segment; it must be positive
            for the pixel's group.
        pixel_group: (P,) index in [0, G) of each pixel's relation row.
        positive, negative: (G, S) bool: prototype j is a positive / negative of group g
            (never both; prototypes that are neither are left out).
        concentration: k. Exponentials are shifted by k |v_i| (log-sum-exp style), so they
            lie in [e^{-2k}, 1]; above k = 40 float32 inputs are evaluated in float64.
    """
    if concentration > MAX_FLOAT32_CONCENTRATION and pixels.dtype != torch.float64:
        losses = relation_contrastive_nll(
            pixels.double(), prototypes.double(), own_segment, pixel_group, positive, negative, concentration
        )
        return losses.to(pixels.dtype)
    return _PixelToSegmentNLL.apply(pixels, prototypes, own_segment, pixel_group, positive, negative, concentration)


def label_contrastive_nll(
    pixels: torch.Tensor,
    prototypes: torch.Tensor,
    own_segment: torch.Tensor,
    pixel_labels: torch.Tensor,
    prototype_labels: torch.Tensor,
    concentration: float,
    pixel_scope: torch.Tensor | None = None,
    prototype_scope: torch.Tensor | None = None,
) -> torch.Tensor:
    """Single-label variant: positive = same label (>= 0), negative = different label, shape (P,).

    With scopes ((P,) and (S,) int64, e.g. the image index), only prototypes in the pixel's
    scope count at all (the per-image edge term).
    """
    if pixel_scope is None or prototype_scope is None:
        group_labels, pixel_group = torch.unique(pixel_labels, return_inverse=True)
        in_scope = torch.ones(group_labels.numel(), prototype_labels.numel(), dtype=torch.bool, device=pixels.device)
    else:
        radix = int(torch.cat([pixel_labels, prototype_labels]).max()) + 1 if pixel_labels.numel() else 1
        group_keys, pixel_group = torch.unique(pixel_scope * radix + pixel_labels, return_inverse=True)
        group_labels = group_keys % radix
        in_scope = (group_keys // radix)[:, None] == prototype_scope[None, :]
    same = group_labels[:, None] == prototype_labels[None, :]
    return relation_contrastive_nll(
        pixels, prototypes, own_segment, pixel_group, same & in_scope, ~same & in_scope, concentration
    )


def tag_contrastive_nll(
    pixels: torch.Tensor,
    prototypes: torch.Tensor,
    own_segment: torch.Tensor,
    pixel_group: torch.Tensor,
    group_tags: torch.Tensor,
    prototype_tags: torch.Tensor,
    concentration: float,
) -> torch.Tensor:
    """Multi-hot variant: positive = tag vectors overlap, negative = disjoint, shape (P,).

    Pixel i's tags are ``group_tags[pixel_group[i]]`` ((G, T) multi-hot, e.g. one row per
    frame); ``prototype_tags`` is (S, T).
    """
    overlap = (group_tags.float() @ prototype_tags.float().T) > 0
    return relation_contrastive_nll(pixels, prototypes, own_segment, pixel_group, overlap, ~overlap, concentration)


def _term_segments(vectors: torch.Tensor, segments: Segments, anchor: torch.Tensor):
    """A term's anchor pixels: (their vectors, own segment among the term's segments, those
    segments' ids, their prototypes computed from the anchors, with gradients)."""
    segment_ids, own = torch.unique(segments.segment[anchor], return_inverse=True)
    pixels = vectors[anchor]
    return pixels, own, segment_ids, segment_prototypes(pixels, own, segment_ids.numel())


def _edge_term(features: torch.Tensor, segments: Segments, k: float) -> torch.Tensor:
    edge = segments.segment_edge[segments.segment]
    anchor = edge >= 0
    image = segments.pixel_image[anchor]
    pixels, own, segment_ids, prototypes = _term_segments(features, segments, anchor)
    losses = label_contrastive_nll(
        pixels,
        prototypes,
        own,
        edge[anchor],
        segments.segment_edge[segment_ids],
        k,
        pixel_scope=image,
        prototype_scope=segments.segment_image[segment_ids],
    )
    # Mean over each image's pixels, then over the images that have any (as SPML).
    pixels_per_image = torch.bincount(image, minlength=segments.clusters.shape[0])
    images = (pixels_per_image > 0).sum().clamp(min=1)
    return (losses / (pixels_per_image[image] * images)).sum()


def _with_memory(prototypes: torch.Tensor, labels: torch.Tensor, memory: PrototypeMemory | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch's (S, D) prototypes and (S, ...) labels followed by the memory's, if it holds any."""
    if memory is None or not len(memory):
        return prototypes, labels
    return torch.cat([prototypes, memory.prototypes.to(prototypes)]), torch.cat([labels, memory.labels.to(labels)])


def _cam_term(rows: torch.Tensor, segments: Segments, memory: PrototypeMemory | None, k: float):
    cam = segments.segment_cam[segments.segment]
    anchor = cam >= 0
    pixels, own, segment_ids, prototypes = _term_segments(rows, segments, anchor)
    labels = segments.segment_cam[segment_ids]
    all_prototypes, all_labels = _with_memory(prototypes, labels, memory)
    losses = label_contrastive_nll(pixels, all_prototypes, own, cam[anchor], all_labels, k)
    return losses.sum() / max(1, losses.numel()), prototypes.detach(), labels


def _tag_term(rows: torch.Tensor, tags: torch.Tensor, segments: Segments, memory: PrototypeMemory | None, k: float):
    image = segments.pixel_image
    anchor = (tags > 0).any(1)[image]
    pixels, own, segment_ids, prototypes = _term_segments(rows, segments, anchor)
    prototype_tags = (tags[segments.segment_image[segment_ids]] > 0).long()
    all_prototypes, all_tags = _with_memory(prototypes, prototype_tags, memory)
    losses = tag_contrastive_nll(pixels, all_prototypes, own, image[anchor], tags, all_tags, k)
    return losses.sum() / max(1, losses.numel()), prototypes.detach(), prototype_tags


def vscr_objective(
    embeddings: torch.Tensor,
    edge_regions: torch.Tensor,
    cam_labels: torch.Tensor,
    tags: torch.Tensor,
    labeled: torch.Tensor,
    ignore: torch.Tensor | None = None,
    memory: PrototypeMemory | None = None,
    config: ObjectiveConfig = ObjectiveConfig(),
    tag_memory: PrototypeMemory | None = None,
) -> ObjectiveTerms:
    """Cluster the batch, form segments and evaluate Eq. 4 (see the module docstring for shapes).

    `memory` supplies the CAM term's prototypes of earlier iterations, `tag_memory` the tag
    term's (labels: (M, T) multi-hot tags); both are read, not updated.
    """
    batch, dim, height, width = embeddings.shape
    device = embeddings.device
    with torch.autocast(device.type, enabled=False):
        if embeddings.dtype != torch.float64:
            embeddings = embeddings.float()
        labeled = labeled.to(device=device, dtype=torch.bool)
        valid = torch.ones(batch, height, width, dtype=torch.bool, device=device)
        if ignore is not None:
            valid &= ~ignore.to(device=device, dtype=torch.bool)
        if not config.use_unlabeled:
            valid &= labeled[:, None, None]
        cam_labels = torch.where(labeled[:, None, None], cam_labels.to(device), -1)

        features = clustering_features(embeddings, config.use_location)  # (B, N, D')
        grid = config.grid
        clusters = spherical_kmeans(
            features,
            grid_labels(height, width, grid, device),
            grid[0] * grid[1],
            valid.reshape(batch, height * width),
            config.iterations,
        ).reshape(batch, height, width)
        segments = form_segments(clusters, edge_regions.to(device), cam_labels, valid)
        rows = pixel_rows(embeddings).reshape(-1, dim)[segments.pixel_index]

        zero = embeddings.new_zeros(())
        edge = cam = tag = zero
        cam_prototypes, cam_prototype_labels = embeddings.new_zeros(0, dim), cam_labels.new_zeros(0)
        tag_prototypes, tag_prototype_labels = embeddings.new_zeros(0, dim), cam_labels.new_zeros(0, tags.shape[1])
        if config.use_edge:
            edge_features = features.reshape(-1, features.shape[-1])[segments.pixel_index]
            edge = _edge_term(edge_features, segments, config.edge_concentration)
        if config.use_cam:
            cam, cam_prototypes, cam_prototype_labels = _cam_term(rows, segments, memory, config.cam_concentration)
        if config.use_tag:
            tag, tag_prototypes, tag_prototype_labels = _tag_term(rows, tags.to(device), segments, tag_memory, config.tag_concentration)
        total = config.cam_weight * cam + config.edge_weight * edge + config.tag_weight * tag
    return ObjectiveTerms(
        total, edge, cam, tag, cam_prototypes, cam_prototype_labels, tag_prototypes, tag_prototype_labels, segments
    )


def action_tag_loss(action_logits: torch.Tensor, actions: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The action head's term: ``action_logits`` (B, A, h, w) per-location action logits of the motion
    branch, ``actions`` (B, A) multi-hot actions of each frame's video tags, ``frames`` (B,) bool the
    frames that take part -> binary cross-entropy of each frame's logits averaged over its locations
    (the clip shows its actions somewhere), the mean over the frames taking part (0 when none)."""
    if not bool(frames.any()):
        return action_logits.sum() * 0
    with torch.autocast(action_logits.device.type, enabled=False):
        clip_logits = action_logits.float().mean(dim=(2, 3))[frames]
        return F.binary_cross_entropy_with_logits(clip_logits, actions[frames].to(clip_logits))
