"""Slow, obviously correct reference of VSCR's k-means, segments and objective.

Written from the definitions (paper Eq. 1-4, SPML's segsort+ kernel) with plain loops over
images, pixels (features, k-means E-step, segment membership), clusters and segments (the
loss: one segment's pixels at a time, one matrix row per pixel), in whatever dtype it is
given (the tests use float64). It shares no code with :mod:`vscr_cli.core.kmeans` /
:mod:`vscr_cli.core.losses` (only the config dataclass), so the tests compare two
independent implementations; ``bench/bench_losses.py`` imports it to time the vectorised
code against it on identical inputs.
"""

from __future__ import annotations

import torch

from vscr_cli.core.params import ObjectiveConfig


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector / vector.norm().clamp(min=1e-12)


def reference_pixels(embeddings: torch.Tensor) -> list[list[torch.Tensor]]:
    """Per image, per pixel (row-major): the embedding vector (unbind keeps backward cheap)."""
    batch, dim = embeddings.shape[:2]
    return [list(image.unbind(0)) for image in embeddings.permute(0, 2, 3, 1).reshape(batch, -1, dim).unbind(0)]


def reference_features(embeddings: torch.Tensor, use_location: bool) -> list[list[torch.Tensor]]:
    """Per image, per pixel (row-major): the clustering feature vector."""
    batch, _, height, width = embeddings.shape
    rows = reference_pixels(embeddings)
    images = []
    for b in range(batch):
        pixels = []
        for y in range(height):
            for x in range(width):
                vector = rows[b][y * width + x]
                if use_location:
                    fy = y / (height - 1) - 0.5 if height > 1 else -0.5
                    fx = x / (width - 1) - 0.5 if width > 1 else -0.5
                    vector = _unit(torch.cat([vector, vector.new_tensor([fy, fx])]))
                pixels.append(vector)
        images.append(pixels)
    return images


def reference_kmeans(
    features: list[list[torch.Tensor]],
    valid: torch.Tensor,
    height: int,
    width: int,
    grid: tuple[int, int],
    iterations: int,
) -> torch.Tensor:
    """Grid-initialised spherical k-means per image; (B, H, W) cluster ids, -1 where not valid."""
    grid_y, grid_x = grid
    clusters = grid_y * grid_x
    result = torch.full((len(features), height, width), -1, dtype=torch.long)
    for b, pixels in enumerate(features):
        valid_pixels = [i for i in range(height * width) if bool(valid[b].reshape(-1)[i])]
        if not valid_pixels:
            continue
        labels = {i: (i // width) * grid_y // height * grid_x + (i % width) * grid_x // width for i in valid_pixels}
        for _ in range(iterations):
            prototypes = {}
            for c in range(clusters):
                members = [pixels[i] for i in valid_pixels if labels[i] == c]
                if members:
                    prototypes[c] = _unit(torch.stack(members).sum(0))
            ids = sorted(prototypes)
            stacked = torch.stack([prototypes[c] for c in ids])
            labels = {i: ids[int(torch.argmax(stacked @ pixels[i]))] for i in valid_pixels}  # first maximum
        for i, label in labels.items():
            result[b, i // width, i % width] = label
    return result


def _segment_nll(
    vectors: torch.Tensor,
    prototypes: torch.Tensor,
    own: int,
    positive: torch.Tensor,
    negative: torch.Tensor,
    concentration: float,
) -> torch.Tensor:
    """For each pixel (row of `vectors`, all in segment `own`):
    -log(sum_pos exp / sum_pos+neg exp) with SPML's own-segment fallback; shape (n,)."""
    logits = concentration * (vectors @ prototypes.T)  # (n, S): row = one pixel
    others = positive.clone()
    others[own] = False
    if bool(others.any()):
        numerator = others
    else:
        numerator = torch.zeros_like(positive)
        numerator[own] = True
    denominator = numerator | negative
    return torch.logsumexp(logits[:, denominator], 1) - torch.logsumexp(logits[:, numerator], 1)


def reference_objective(
    embeddings: torch.Tensor,
    edge_regions: torch.Tensor,
    cam_labels: torch.Tensor,
    tags: torch.Tensor,
    labeled: torch.Tensor,
    ignore: torch.Tensor | None = None,
    memory_prototypes: torch.Tensor | None = None,
    memory_labels: torch.Tensor | None = None,
    config: ObjectiveConfig = ObjectiveConfig(),
    tag_memory_prototypes: torch.Tensor | None = None,
    tag_memory_tags: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Eq. 4 by loops. Returns ``total``, ``edge``, ``cam``, ``tag`` and ``clusters`` (B, H, W)."""
    batch, _, height, width = embeddings.shape
    valid = torch.ones(batch, height, width, dtype=torch.bool) if ignore is None else ~ignore.cpu()
    if not config.use_unlabeled:
        valid &= labeled.cpu()[:, None, None]
    features = reference_features(embeddings, config.use_location)
    clusters = reference_kmeans(
        [[f.detach() for f in image] for image in features], valid, height, width, config.grid, config.iterations
    )

    # Segments: (image, cluster, edge region, CAM label) -> member pixels (b, flat index).
    segments: dict[tuple[int, int, int, int], list[tuple[int, int]]] = {}
    for b in range(batch):
        for i in range(height * width):
            y, x = divmod(i, width)
            if valid[b, y, x]:
                cam = int(cam_labels[b, y, x]) if bool(labeled[b]) else -1
                key = (b, int(clusters[b, y, x]), int(edge_regions[b, y, x]), cam)
                segments.setdefault(key, []).append((b, i))
    rows = reference_pixels(embeddings)

    def members(key: tuple[int, int, int, int], use_features: bool) -> torch.Tensor:
        """(n, D) vectors of the segment's pixels."""
        source = features if use_features else rows
        return torch.stack([source[b][i] for b, i in segments[key]])

    zero = embeddings.new_zeros(())
    # Edge term: per image, label = edge region, features with location.
    edge = zero
    image_means = []
    for b in range(batch if config.use_edge else 0):
        keys = [key for key in segments if key[0] == b and key[2] >= 0]
        if not keys:
            continue
        vectors = [members(key, True) for key in keys]
        prototypes = torch.stack([_unit(v.sum(0)) for v in vectors])
        regions = torch.tensor([key[2] for key in keys])
        losses = []
        for own, key in enumerate(keys):
            same = regions == key[2]
            losses.append(_segment_nll(vectors[own], prototypes, own, same, ~same, config.edge_concentration))
        image_means.append(torch.cat(losses).mean())
    if image_means:
        edge = torch.stack(image_means).mean()

    # CAM term: batch + memory, label = CAM class, CAM-labelled pixels only.
    cam_term = zero
    keys = [key for key in segments if key[3] >= 0]
    if config.use_cam and keys:
        vectors = [members(key, False) for key in keys]
        prototypes = torch.stack([_unit(v.sum(0)) for v in vectors])
        classes = torch.tensor([key[3] for key in keys])
        if memory_prototypes is not None and memory_prototypes.numel():
            prototypes = torch.cat([prototypes, memory_prototypes.to(prototypes)])
            classes = torch.cat([classes, memory_labels.cpu()])
        losses = []
        for own, key in enumerate(keys):
            same = classes == key[3]
            losses.append(_segment_nll(vectors[own], prototypes, own, same, ~same, config.cam_concentration))
        cam_term = torch.cat(losses).mean()

    # Tag term: batch + tag memory, positive = tag vectors overlap, frames with tags only.
    tag = zero
    tagged = [b for b in range(batch) if bool((tags[b] > 0).any())]
    keys = [key for key in segments if key[0] in tagged]
    if config.use_tag and keys:
        vectors = [members(key, False) for key in keys]
        prototypes = torch.stack([_unit(v.sum(0)) for v in vectors])
        prototype_tags = torch.stack([tags[key[0]] for key in keys]).double()
        if tag_memory_prototypes is not None and tag_memory_prototypes.numel():
            prototypes = torch.cat([prototypes, tag_memory_prototypes.to(prototypes)])
            prototype_tags = torch.cat([prototype_tags, tag_memory_tags.double()])
        losses = []
        for own, key in enumerate(keys):
            overlap = (prototype_tags @ tags[key[0]].double()) > 0
            losses.append(_segment_nll(vectors[own], prototypes, own, overlap, ~overlap, config.tag_concentration))
        tag = torch.cat(losses).mean()

    total = config.cam_weight * cam_term + config.edge_weight * edge + config.tag_weight * tag
    return {"total": total, "edge": edge, "cam": cam_term, "tag": tag, "clusters": clusters}
