"""Tests of the unified contrastive objective (vscr_cli.core.losses) against the loop reference."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from vscr_cli.core import losses
from vscr_cli.core.losses import (
    PrototypeMemory,
    action_tag_loss,
    label_contrastive_nll,
    tag_contrastive_nll,
    vscr_objective,
)
from vscr_cli.core.params import ObjectiveConfig

from .reference import reference_objective

TERMS = ("total", "edge", "cam", "tag")


def make_batch(batch=3, dim=6, height=6, width=7, tags=5, seed=0, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Small random inputs in the objective's conventions (see the losses module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    # Frame b has tag b (mod T), odd frames also tag b + 1: frames 1 and 2 overlap, 0 and 2 do not.
    tag_vectors = torch.zeros(batch, tags, dtype=dtype)
    tag_vectors[torch.arange(batch), torch.arange(batch) % tags] = 1
    odd = torch.arange(batch)[1::2]
    tag_vectors[odd, (odd + 1) % tags] = 1
    return {
        "embeddings": F.normalize(torch.randn(batch, dim, height, width, generator=generator, dtype=dtype), dim=1),
        "edge_regions": torch.randint(-1, 3, (batch, height, width), generator=generator),
        "cam_labels": torch.randint(-1, 3, (batch, height, width), generator=generator),
        "tags": tag_vectors,
        "labeled": torch.arange(batch) % 3 != 1,
        "ignore": torch.rand(batch, height, width, generator=generator) < 0.1,
    }


def make_memory(dim=6, seed=0, dtype=torch.float64) -> PrototypeMemory:
    generator = torch.Generator().manual_seed(seed + 100)
    memory = PrototypeMemory(capacity=2)
    for size in (4, 3):
        memory.update(
            F.normalize(torch.randn(size, dim, generator=generator, dtype=dtype), dim=1),
            torch.randint(0, 4, (size,), generator=generator),  # class 3 is absent from the batch
        )
    return memory


def make_tag_memory(dim=6, seed=0, tags=5, dtype=torch.float64) -> PrototypeMemory:
    """Two stored iterations of tagged segments: tag vectors that overlap some batch frames' and not others'."""
    generator = torch.Generator().manual_seed(seed + 200)
    memory = PrototypeMemory(capacity=2)
    for size in (5, 2):
        vectors = torch.zeros(size, tags, dtype=torch.long)
        vectors[torch.arange(size), torch.randint(0, tags, (size,), generator=generator)] = 1
        memory.update(F.normalize(torch.randn(size, dim, generator=generator, dtype=dtype), dim=1), vectors)
    return memory


def run_both(inputs, memory=None, config=ObjectiveConfig(), tag_memory=None):
    """(fast terms, reference terms, fast grad, reference grad) for the same float64 inputs."""
    fast_embeddings = inputs["embeddings"].clone().requires_grad_()
    fast = vscr_objective(**{**inputs, "embeddings": fast_embeddings}, memory=memory, config=config, tag_memory=tag_memory)
    fast.total.backward()
    slow_embeddings = inputs["embeddings"].clone().requires_grad_()
    slow = reference_objective(
        **{**inputs, "embeddings": slow_embeddings},
        memory_prototypes=None if memory is None else memory.prototypes,
        memory_labels=None if memory is None else memory.labels,
        config=config,
        tag_memory_prototypes=None if tag_memory is None else tag_memory.prototypes,
        tag_memory_tags=None if tag_memory is None else tag_memory.labels,
    )
    slow["total"].backward()
    return fast, slow, fast_embeddings.grad, slow_embeddings.grad


CONFIGS = {
    "paper": ObjectiveConfig(grid=(2, 2)),
    "no-location": ObjectiveConfig(grid=(3, 2), use_location=False, iterations=4),
    "concentrations": ObjectiveConfig(
        grid=(2, 3), edge_concentration=4.0, cam_concentration=10.0, tag_concentration=2.0, edge_weight=1.0
    ),
    "no-unlabeled": ObjectiveConfig(grid=(2, 2), use_unlabeled=False),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("seed", [0, 1])
def test_objective_matches_reference(name, seed):
    inputs = make_batch(seed=seed)
    fast, slow, fast_grad, slow_grad = run_both(inputs, make_memory(seed=seed), CONFIGS[name], make_tag_memory(seed=seed))
    assert torch.equal(fast.segments.clusters, slow["clusters"])
    for term in TERMS:
        assert getattr(fast, term).item() == pytest.approx(slow[term].item(), abs=1e-5, rel=1e-5), term
        assert getattr(fast, term).item() == pytest.approx(slow[term].item(), abs=1e-10), term
    assert torch.allclose(fast_grad, slow_grad, atol=1e-10)
    assert fast.edge > 0 and fast.cam > 0 and fast.tag > 0


def test_each_term_alone_matches_reference():
    inputs = make_batch(seed=3, batch=4)
    for term in ("edge", "cam", "tag"):
        config = ObjectiveConfig(grid=(2, 2), **{f"use_{other}": other == term for other in ("edge", "cam", "tag")})
        fast, slow, fast_grad, slow_grad = run_both(inputs, make_memory(seed=3), config, make_tag_memory(seed=3))
        assert fast.total.item() == pytest.approx(slow["total"].item(), abs=1e-10)
        assert torch.allclose(fast_grad, slow_grad, atol=1e-10)
        for other in {"edge", "cam", "tag"} - {term}:
            assert getattr(fast, other).item() == 0.0


def test_kernel_hand_computed_example():
    pixels = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    prototypes = F.normalize(torch.tensor([[1.0, 0.2], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64), dim=1)
    cos = (prototypes @ pixels[0]).tolist()
    k = 3.0
    # Own segment 0 and segment 1 share label 7, segment 2 does not: the own segment is left out.
    loss = label_contrastive_nll(pixels, prototypes, torch.tensor([0]), torch.tensor([7]), torch.tensor([7, 7, 1]), k)
    expected = -math.log(math.exp(k * cos[1]) / (math.exp(k * cos[1]) + math.exp(k * cos[2])))
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    # Only the own segment is positive: SPML's fallback uses it.
    loss = label_contrastive_nll(pixels, prototypes, torch.tensor([0]), torch.tensor([7]), torch.tensor([7, 2, 1]), k)
    expected = -math.log(math.exp(k * cos[0]) / sum(math.exp(k * c) for c in cos))
    assert loss.item() == pytest.approx(expected, abs=1e-12)
    # No negatives at all: the loss is exactly zero.
    loss = label_contrastive_nll(pixels, prototypes, torch.tensor([0]), torch.tensor([7]), torch.tensor([7, 7, 7]), k)
    assert loss.item() == 0.0


def kernel_inputs(seed: int):
    generator = torch.Generator().manual_seed(seed)
    prototype_labels = torch.tensor([0, 0, 1, 1, 1, 2, 0, 2])  # label 2 of scope 1 has one segment
    prototype_scope = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    own = torch.randint(0, 8, (13,), generator=generator)
    pixels = F.normalize(torch.randn(13, 4, generator=generator, dtype=torch.float64), dim=1)
    prototypes = F.normalize(torch.randn(8, 4, generator=generator, dtype=torch.float64), dim=1)
    return pixels, prototypes, own, prototype_labels, prototype_scope


@pytest.mark.parametrize("chunk_elements", [4, 1 << 21])
def test_kernel_gradcheck(monkeypatch, chunk_elements):
    monkeypatch.setattr(losses, "CHUNK_ELEMENTS", chunk_elements)
    pixels, prototypes, own, labels, scope = kernel_inputs(0)
    pixels.requires_grad_()
    prototypes.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda p, m: label_contrastive_nll(p, m, own, labels[own], labels, 5.0, scope[own], scope), (pixels, prototypes)
    )
    assert torch.autograd.gradcheck(
        lambda p, m: label_contrastive_nll(p, m, own, labels[own], labels, 2.0), (pixels, prototypes)
    )
    tags = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.float64)
    group = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    assert torch.autograd.gradcheck(
        lambda p, m: tag_contrastive_nll(p, m, own, group[own], tags, tags[group], 8.0), (pixels, prototypes)
    )


def test_chunking_changes_nothing(monkeypatch):
    inputs = make_batch(seed=4, batch=4)
    config = ObjectiveConfig(grid=(2, 2))

    def evaluate():
        embeddings = inputs["embeddings"].clone().requires_grad_()
        terms = vscr_objective(**{**inputs, "embeddings": embeddings}, memory=make_memory(seed=4), config=config)
        terms.total.backward()
        return terms, embeddings.grad

    whole, whole_grad = evaluate()
    monkeypatch.setattr(losses, "CHUNK_ELEMENTS", 200)  # chunks of a few pixels, some with column subsets
    chunked, chunked_grad = evaluate()
    for term in TERMS:
        assert getattr(chunked, term).item() == pytest.approx(getattr(whole, term).item(), abs=1e-12)
    assert torch.allclose(chunked_grad, whole_grad, atol=1e-12)


def test_one_hot_tags_equal_single_labels():
    pixels, prototypes, own, labels, _ = kernel_inputs(1)
    single = label_contrastive_nll(pixels, prototypes, own, labels[own], labels, 8.0)
    group_tags = torch.eye(3, dtype=torch.float64)  # group g = label g has tag g only
    multi = tag_contrastive_nll(pixels, prototypes, own, labels[own], group_tags, group_tags[labels], 8.0)
    assert torch.allclose(single, multi, atol=1e-12)


def test_objective_gradcheck():
    inputs = make_batch(batch=2, dim=3, height=4, width=4, seed=5)
    memory = make_memory(dim=3, seed=5)
    config = ObjectiveConfig(grid=(2, 2))
    embeddings = inputs.pop("embeddings").requires_grad_()
    assert torch.autograd.gradcheck(
        lambda e: vscr_objective(e, **inputs, memory=memory, config=config).total, (embeddings,), fast_mode=True
    )


def with_extra_unlabeled_frame(inputs: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    extra = make_batch(batch=1, seed=seed)
    extra["labeled"] = torch.tensor([False])
    extra["cam_labels"] = torch.full_like(extra["cam_labels"], 1)  # must be ignored: the frame is in D_u
    return {key: torch.cat([inputs[key], extra[key]]) for key in inputs}


def test_unlabeled_frames_join_edge_and_tag_terms_but_not_the_cam_term():
    inputs = make_batch(batch=2, seed=6)
    inputs["labeled"] = torch.tensor([True, True])
    config = ObjectiveConfig(grid=(2, 2))
    base = vscr_objective(**inputs, memory=make_memory(seed=6), config=config)
    more = vscr_objective(**with_extra_unlabeled_frame(inputs, seed=7), memory=make_memory(seed=6), config=config)
    assert more.cam.item() == pytest.approx(base.cam.item(), abs=1e-12)
    assert torch.equal(more.cam_labels, base.cam_labels)
    assert abs(more.edge.item() - base.edge.item()) > 1e-3
    assert abs(more.tag.item() - base.tag.item()) > 1e-3
    # Without D_u ("w/o unlabeled samples") the extra frame changes nothing at all.
    dropped = dataclasses.replace(config, use_unlabeled=False)
    without = vscr_objective(**inputs, memory=make_memory(seed=6), config=dropped)
    ignored = vscr_objective(**with_extra_unlabeled_frame(inputs, seed=7), memory=make_memory(seed=6), config=dropped)
    for term in TERMS:
        assert getattr(ignored, term).item() == pytest.approx(getattr(without, term).item(), abs=1e-12)


def test_permuting_the_batch_changes_nothing():
    inputs = make_batch(batch=5, seed=8)
    order = torch.tensor([3, 0, 4, 2, 1])
    config = ObjectiveConfig(grid=(2, 2))
    embeddings = inputs["embeddings"].clone().requires_grad_()
    base = vscr_objective(**{**inputs, "embeddings": embeddings}, memory=make_memory(seed=8), config=config)
    base.total.backward()
    permuted_inputs = {key: value[order] for key, value in inputs.items()}
    permuted_embeddings = permuted_inputs["embeddings"].clone().requires_grad_()
    permuted = vscr_objective(
        **{**permuted_inputs, "embeddings": permuted_embeddings}, memory=make_memory(seed=8), config=config
    )
    permuted.total.backward()
    for term in TERMS:
        assert getattr(permuted, term).item() == pytest.approx(getattr(base, term).item(), abs=1e-12)
    assert torch.allclose(permuted_embeddings.grad, embeddings.grad[order], atol=1e-12)


def aligned_batch(alpha: float, term: str) -> dict[str, torch.Tensor]:
    """4 frames of quadrant regions; embeddings pulled (by `alpha`) towards one direction per
    positive set of `term`: per (frame, region) for edge, per CAM class for cam, per tag for tag."""
    generator = torch.Generator().manual_seed(9)
    batch, dim, size = 4, 16, 8
    quadrant = torch.zeros(size, size, dtype=torch.long)
    quadrant[:, size // 2 :] += 1
    quadrant[size // 2 :, :] += 2
    edges = quadrant.expand(batch, -1, -1).clone()
    cams = torch.stack([torch.tensor([0, 1, 0, 2])[quadrant], torch.tensor([0, 0, 1, 2])[quadrant]] * 2)
    tags = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    if term == "edge":
        owner = torch.arange(batch)[:, None, None] * 4 + edges
    elif term == "cam":
        owner = cams
    else:
        owner = tags.argmax(1)[:, None, None].expand(-1, size, size)
    directions = F.normalize(torch.randn(16, dim, generator=generator), dim=1)
    noise = F.normalize(torch.randn(batch, size, size, dim, generator=generator), dim=3)
    embeddings = F.normalize(alpha * directions[owner] + noise, dim=3).permute(0, 3, 1, 2)
    return {
        "embeddings": embeddings.contiguous(),
        "edge_regions": edges,
        "cam_labels": cams,
        "tags": tags,
        "labeled": torch.tensor([True, True, True, False]),
    }


@pytest.mark.parametrize("term", ["edge", "cam", "tag"])
def test_aligning_positives_lowers_the_loss(term):
    values = [getattr(vscr_objective(**aligned_batch(alpha, term)), term).item() for alpha in (0.0, 0.5, 1.0, 3.0)]
    assert values == sorted(values, reverse=True) and values[-1] < 0.5 * values[0]


def test_a_gradient_step_lowers_the_total():
    inputs = make_batch(batch=4, dim=8, height=8, width=8, seed=10, dtype=torch.float32)
    embeddings = inputs.pop("embeddings").requires_grad_()
    before = vscr_objective(embeddings, **inputs)
    before.total.backward()
    stepped = F.normalize(embeddings.detach() - 0.05 * embeddings.grad, dim=1)
    assert vscr_objective(stepped, **inputs).total < before.total


def degenerate_cases() -> dict[str, tuple[dict[str, torch.Tensor], ObjectiveConfig]]:
    config = ObjectiveConfig(grid=(2, 2))
    base = make_batch(seed=11, dtype=torch.float32)
    all_ignored = {**base, "ignore": torch.ones_like(base["ignore"])}
    one_ignored = {**base, "ignore": base["ignore"].clone()}
    one_ignored["ignore"][0] = True
    single = make_batch(batch=1, seed=12, dtype=torch.float32)
    single.update(
        edge_regions=torch.zeros_like(single["edge_regions"]),
        cam_labels=torch.zeros_like(single["cam_labels"]),
        labeled=torch.tensor([True]),
        ignore=None,
    )
    constant = {**base, "embeddings": F.normalize(torch.ones_like(base["embeddings"]), dim=1)}
    tiny = make_batch(batch=2, height=1, width=1, seed=13, dtype=torch.float32)
    empty = make_batch(batch=0, seed=14, dtype=torch.float32)
    return {
        "all-ignored": (all_ignored, config),
        "one-image-ignored": (one_ignored, config),
        "single-segment": (single, ObjectiveConfig(grid=(1, 1))),
        "no-cam": ({**base, "labeled": torch.zeros(3, dtype=torch.bool)}, config),
        "no-tags": ({**base, "tags": torch.zeros_like(base["tags"])}, config),
        "no-edge-regions": ({**base, "edge_regions": torch.full_like(base["edge_regions"], -1)}, config),
        "constant-embeddings": (constant, config),
        "one-pixel-images": (tiny, ObjectiveConfig()),
        "empty-batch": (empty, config),
    }


@pytest.mark.parametrize("case", sorted(degenerate_cases()))
def test_degenerate_inputs_give_finite_values_and_gradients(case):
    inputs, config = degenerate_cases()[case]
    embeddings = inputs.pop("embeddings").clone().requires_grad_()
    terms = vscr_objective(embeddings, **inputs, memory=make_memory(dim=6, seed=0, dtype=torch.float32), config=config)
    for term in TERMS:
        assert torch.isfinite(getattr(terms, term)), term
    terms.total.backward()
    assert torch.isfinite(embeddings.grad).all()
    if case in ("all-ignored", "no-edge-regions", "single-segment", "empty-batch"):
        assert terms.edge.item() == 0.0
    if case in ("all-ignored", "no-cam", "empty-batch"):
        assert terms.cam.item() == 0.0
    if case in ("all-ignored", "no-tags", "single-segment", "empty-batch"):
        assert terms.tag.item() == 0.0


def test_switches_and_weights():
    inputs = make_batch(seed=15)
    full = vscr_objective(**inputs, config=ObjectiveConfig(grid=(2, 2)))
    assert full.total.item() == pytest.approx(0.3 * full.cam.item() + 0.3 * full.edge.item() + 0.1 * full.tag.item())
    cam, edge, tag = full.cam.item(), full.edge.item(), full.tag.item()
    weights = ObjectiveConfig(grid=(2, 2), cam_weight=2.0, edge_weight=0.5, tag_weight=1.5)
    assert vscr_objective(**inputs, config=weights).total.item() == pytest.approx(2.0 * cam + 0.5 * edge + 1.5 * tag)
    no_edge = vscr_objective(**inputs, config=ObjectiveConfig(grid=(2, 2), use_edge=False))
    assert no_edge.edge.item() == 0.0 and no_edge.total.item() == pytest.approx(0.3 * cam + 0.1 * tag)
    no_cam = vscr_objective(**inputs, config=ObjectiveConfig(grid=(2, 2), use_cam=False))
    assert no_cam.cam.item() == 0.0 and no_cam.cam_prototypes.shape == (0, 6)
    assert vscr_objective(**inputs, config=ObjectiveConfig(grid=(2, 2), use_tag=False)).tag.item() == 0.0


def test_each_memory_enters_its_own_term_only():
    inputs = make_batch(seed=16)
    config = ObjectiveConfig(grid=(2, 2))
    without = vscr_objective(**inputs, config=config)
    with_memory = vscr_objective(**inputs, memory=make_memory(seed=16), config=config)
    assert with_memory.cam.item() != pytest.approx(without.cam.item(), abs=1e-6)
    assert with_memory.edge.item() == pytest.approx(without.edge.item(), abs=1e-12)
    assert with_memory.tag.item() == pytest.approx(without.tag.item(), abs=1e-12)
    assert not with_memory.cam_prototypes.requires_grad
    assert with_memory.cam_prototypes.shape[0] == with_memory.cam_labels.shape[0] > 0
    with_tag_memory = vscr_objective(**inputs, config=config, tag_memory=make_tag_memory(seed=16))
    assert with_tag_memory.tag.item() != pytest.approx(without.tag.item(), abs=1e-6)
    assert with_tag_memory.cam.item() == pytest.approx(without.cam.item(), abs=1e-12)
    assert with_tag_memory.edge.item() == pytest.approx(without.edge.item(), abs=1e-12)


def test_tag_prototypes_for_the_memory_are_the_tagged_frames_segments():
    inputs = make_batch(seed=17)
    inputs["tags"][0] = 0  # frame 0 has no tags: none of its segments is stored
    terms = vscr_objective(**inputs, config=ObjectiveConfig(grid=(2, 2)))
    segments = terms.segments
    tagged_segments = int((segments.segment_image != 0).sum())
    assert terms.tag_prototypes.shape == (tagged_segments, 6) and not terms.tag_prototypes.requires_grad
    assert torch.equal(terms.tag_labels, inputs["tags"][segments.segment_image[segments.segment_image != 0]].long())
    memory = PrototypeMemory(capacity=1)
    memory.update(terms.tag_prototypes, terms.tag_labels)
    assert len(memory) == tagged_segments and memory.labels.shape == (tagged_segments, 5)


def test_memory_keeps_the_last_iterations_and_round_trips():
    memory = PrototypeMemory(capacity=2)
    assert len(memory) == 0
    batches = [(torch.full((n, 3), float(n)), torch.full((n,), n)) for n in (2, 0, 4, 1)]
    for prototypes, labels in batches:
        memory.update(prototypes, labels)
    assert memory.sizes.tolist() == [4, 1] and memory.labels.tolist() == [4, 4, 4, 4, 1]
    state = {key: value.clone() for key, value in memory.state_dict().items()}
    assert set(state) == {"prototypes", "labels", "sizes"} and all(isinstance(v, torch.Tensor) for v in state.values())
    restored = PrototypeMemory(capacity=2)
    restored.load_state_dict(state)
    assert torch.equal(restored.prototypes, memory.prototypes) and torch.equal(restored.labels, memory.labels)
    multi_hot = PrototypeMemory(capacity=1)
    multi_hot.update(torch.ones(3, 2), torch.eye(3, 4, dtype=torch.long))
    copy = PrototypeMemory(capacity=1)
    copy.load_state_dict(multi_hot.state_dict())
    assert len(copy) == 3 and torch.equal(copy.labels, torch.eye(3, 4, dtype=torch.long))
    memory.update(*batches[0])
    restored.update(*batches[0])
    assert torch.equal(restored.prototypes, memory.prototypes) and restored.sizes.tolist() == [1, 2]
    shorter = PrototypeMemory(capacity=1)
    shorter.load_state_dict(state)
    assert shorter.labels.tolist() == [1]
    disabled = PrototypeMemory(capacity=0)
    disabled.update(*batches[2])
    assert len(disabled) == 0
    with pytest.raises(ValueError):
        restored.load_state_dict({**state, "sizes": torch.tensor([9])})


def test_bfloat16_autocast_on_cpu_stays_close_to_float32():
    inputs = make_batch(batch=4, dim=16, height=8, width=8, seed=17, dtype=torch.float32)
    exact = vscr_objective(**inputs)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        embeddings = inputs["embeddings"].clone().requires_grad_()
        reduced = vscr_objective(**{**inputs, "embeddings": embeddings.bfloat16()})
    reduced.total.backward()
    assert reduced.total.dtype == torch.float32 and torch.isfinite(embeddings.grad).all()
    assert reduced.total.item() == pytest.approx(exact.total.item(), rel=0.05)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_and_runs_under_autocast():
    inputs = make_batch(batch=4, dim=16, height=12, width=12, seed=18, dtype=torch.float32)
    memory = make_memory(dim=16, seed=18, dtype=torch.float32)
    cpu = vscr_objective(**inputs, memory=memory)
    cuda_inputs = {key: value.cuda() for key, value in inputs.items()}
    cuda = vscr_objective(**cuda_inputs, memory=memory)
    for term in TERMS:
        assert getattr(cuda, term).item() == pytest.approx(getattr(cpu, term).item(), abs=1e-4)
    for dtype in (torch.float16, torch.bfloat16):
        embeddings = cuda_inputs["embeddings"].clone().requires_grad_()
        with torch.autocast("cuda", dtype=dtype):
            terms = vscr_objective(**{**cuda_inputs, "embeddings": embeddings.to(dtype)}, memory=memory)
        terms.total.backward()
        assert torch.isfinite(terms.total) and torch.isfinite(embeddings.grad).all()


def test_action_term_is_the_cross_entropy_of_each_taking_part_frames_mean_logits():
    """Expectations worked out by hand, not the implementation's formula: zero logits cost log 2 per
    action; logits whose *mean* over the clip's locations is confidently right cost about nothing, even
    where single locations are confidently wrong (the clip shows its action somewhere); a frame
    whose video has no tags does not count, whatever its logits."""
    actions = torch.zeros(3, 9)
    actions[0, 6], actions[1, [4, 6]] = 1, 1
    frames = torch.tensor([True, True, False])  # the third frame's video has no tags
    assert action_tag_loss(torch.zeros(3, 9, 4, 5), actions, frames).item() == pytest.approx(math.log(2))
    logits = torch.where(actions[:, :, None, None] > 0, 10.0, -10.0).expand(3, 9, 4, 5).clone()
    logits[:, :, :2] = 3 * logits[:, :, :2]  # half the locations at +-30, half at -+10: each location's mean is +-10
    logits[:, :, 2:] = -logits[:, :, 2:]
    logits[2] = torch.where(actions[2, :, None, None] > 0, -50.0, 50.0)  # all wrong on the untagged frame
    logits.requires_grad_()
    loss = action_tag_loss(logits, actions, frames)
    assert loss.item() == pytest.approx(math.log1p(math.exp(-10)), abs=1e-6)  # per-location BCE would be about 5
    loss.backward()
    assert logits.grad[:2].abs().sum() > 0 and (logits.grad[2] == 0).all()
    none = action_tag_loss(logits, actions, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0 and none.requires_grad
