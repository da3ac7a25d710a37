import numpy as np
import pytest
import torch

from vscr_cli import labels
from vscr_cli.core.crf import DenseCRFParams, crf_labels, dense_crf
from vscr_cli.stages.predict import allowed_classes, start_decoding


def _square_scene(size: int = 64, side: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """A textured bright square on a darker textured ground: (H, W, 3) uint8 and its (H, W) bool mask."""
    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), bool)
    start = (size - side) // 2
    mask[start : start + side, start : start + side] = True
    image = np.where(mask[..., None], [200, 120, 60], [60, 90, 70]) + rng.integers(-6, 7, (size, size, 3))
    return image.clip(0, 255).astype(np.uint8), mask


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def _spilled_probabilities(mask: np.ndarray, cell: int = 8) -> np.ndarray:
    """(2, H, W) background/actor probabilities as a stride-``cell`` map upsampled bilinearly sees them: spilling around the actor."""
    coarse = torch.from_numpy(mask.astype(np.float32))[None, None]
    coarse = torch.nn.functional.max_pool2d(coarse, cell)  # any actor pixel marks the cell
    actor = torch.nn.functional.interpolate(coarse, size=mask.shape, mode="bilinear", align_corners=False)[0, 0].numpy()
    actor = 0.1 + 0.8 * actor
    return np.stack([1 - actor, actor]).astype(np.float32)


def test_dense_crf_snaps_a_spilled_mask_to_the_colour_edge():
    image, mask = _square_scene()
    prob = _spilled_probabilities(np.roll(mask, (3, 3), (0, 1)))  # half a cell off and a cell wide
    before = prob.argmax(0) == 1
    marginals = dense_crf(image, prob)
    after = marginals.argmax(0) == 1
    assert _iou(before, mask) < 0.75
    assert _iou(after, mask) > 0.95
    np.testing.assert_allclose(marginals.sum(0), 1, atol=1e-4)


def test_dense_crf_on_a_flat_image_smooths_isolated_doubts_into_their_surroundings():
    """A flat image carries no edge, so the pairwise terms pull each pixel to its neighbourhood's label:
    pixels whose unaries weakly disagree with all around them flip, a confident region stays. A CRF that
    did nothing would keep every doubtful pixel."""
    image = np.full((32, 32, 3), 128, np.uint8)
    actor = np.full((32, 32), 0.8)
    doubtful = np.zeros((32, 32), bool)
    doubtful[4::7, 3::6] = True  # isolated pixels, 20 of them
    actor[doubtful] = 0.4
    prob = np.stack([1 - actor, actor]).astype(np.float32)
    assert ((prob.argmax(0) == 1) == ~doubtful).all()  # the unaries alone leave them background
    marginals = dense_crf(image, prob)
    assert (marginals.argmax(0) == 1).all()
    assert (marginals[1][~doubtful] > 0.8).all()  # the confident region is kept and made surer


def test_crf_labels_moves_a_rough_pseudo_label_onto_the_colour_edge():
    """A blocky mask half a cell off (as SLIC votes on a coarse activation leave it) snaps to the
    square; the classes stay the two given."""
    image, mask = _square_scene()
    rough = np.roll(mask, (3, 3), (0, 1))
    rough[24:28, 8:14] = True  # a patch of background taken as actor
    refined = crf_labels(image, rough.astype(np.int64), 2)
    assert set(np.unique(refined)) <= {0, 1}
    assert _iou(rough, mask) < 0.75
    assert _iou(refined == 1, mask) > 0.95


def test_crf_labels_decides_unsure_pixels_by_colour():
    """Pixels marked unsure (-1) have no say of their own: a band of them around the square's edge
    goes to the side whose colour it has, in both directions."""
    image, mask = _square_scene()
    label = mask.astype(np.int64)
    ring = np.zeros_like(mask)
    ring[16:48, 16:48] = True
    ring[24:40, 24:40] = False  # a 4-px band across the square's edge (the square spans 20-44)
    label[ring] = -1
    refined = crf_labels(image, label, 2)
    assert (refined[ring] == mask[ring]).mean() > 0.95
    assert (refined[~ring] == mask[~ring]).all()


def test_dense_crf_rejects_an_image_of_another_frame():
    with pytest.raises(ValueError, match="differ in aspect ratio"):
        dense_crf(np.zeros((8, 8, 3), np.uint8), np.full((2, 9, 8), 0.5, np.float32), DenseCRFParams())
    with pytest.raises(ValueError, match="differ in aspect ratio"):
        crf_labels(np.zeros((8, 8, 3), np.uint8), np.zeros((9, 8), np.int64), 2)


def test_dense_crf_at_a_working_size_runs_there_and_returns_the_full_size(monkeypatch):
    """``work``: the mean field runs on the image and the probabilities shrunk to it (a quarter of the
    pixels at half the rows), its marginals upsampled to the probabilities' size: still on the colour
    edge; the image may come at another scale of the same frame (the network's)."""
    from vscr_cli.core import crf

    image, mask = _square_scene(128, 48)
    prob = _spilled_probabilities(np.roll(mask, (6, 6), (0, 1)), cell=16)
    seen = []
    original = crf._mean_field
    monkeypatch.setattr(crf, "_mean_field", lambda picture, *rest: seen.append(picture.shape) or original(picture, *rest))
    full = dense_crf(image, prob)
    half = dense_crf(image, prob, work=(64, 64))
    big = dense_crf(np.repeat(np.repeat(image, 2, 0), 2, 1), prob, work=(64, 64))  # the frame at twice the size
    assert seen == [(128, 128, 3), (64, 64, 3), (64, 64, 3)]
    assert half.shape == full.shape == (2, 128, 128)
    assert (big.argmax(0) == half.argmax(0)).mean() > 0.99  # the image shrunk from either scale
    before = _iou(prob.argmax(0) == 1, mask)
    after_full, after_half = (_iou(m.argmax(0) == 1, mask) for m in (full, half))
    assert before < 0.75 and after_full > 0.95 and after_half > 0.9
    np.testing.assert_allclose(half.sum(0), 1, atol=1e-4)


def test_decoding_with_the_crf_follows_the_frame_at_the_network_scale():
    image, mask = _square_scene()
    tag = labels.CLASS_IDS[4]
    actor = torch.from_numpy(mask.astype(np.float32))[None, None]
    coarse = torch.nn.functional.avg_pool2d(actor, 8)[0, 0]  # (8, 8) stride-8 evidence
    logits = torch.full((1, labels.NUM_CLASSES, 8, 8), -8.0)
    logits[0, 0] = 2 * (0.5 - coarse) * 4
    logits[0, 4] = 2 * (coarse - 0.5) * 4
    plain, _ = start_decoding(logits, allowed_classes([tag]), mask.shape, keep_prob=False)()
    big = np.repeat(np.repeat(image, 2, 0), 2, 1)  # the network saw the frame at 2x (--scale 2)
    sharp, prob = start_decoding(logits, allowed_classes([tag]), mask.shape, keep_prob=True, images=big[None], crf=DenseCRFParams())()
    assert set(np.unique(sharp)) <= {0, tag}
    assert _iou(sharp[0] == tag, mask) > _iou(plain[0] == tag, mask)
    assert _iou(sharp[0] == tag, mask) > 0.95
    torch.testing.assert_close(prob.float().sum(1), torch.ones(1, *mask.shape), atol=2e-3, rtol=0)
    with pytest.raises(ValueError, match="needs the frames"):
        start_decoding(logits, allowed_classes([tag]), mask.shape, keep_prob=False, crf=DenseCRFParams())()


def test_the_crf_height_is_the_working_size_of_each_frames_crf():
    """``crf_height``: each frame's marginals are :func:`dense_crf`'s at that many rows (the width by
    the frame's aspect ratio), at the labels' own size where they have fewer rows."""
    from vscr_cli.stages import predict

    image, mask = _square_scene(128, 48)
    prob = _spilled_probabilities(np.roll(mask, (6, 6), (0, 1)), cell=16)
    tensor = torch.from_numpy(prob)[None]
    half = predict.start_crf(tensor, image[None], DenseCRFParams(), height=64)()
    assert half[0].numpy().tobytes() == dense_crf(image, prob, work=(64, 64)).tobytes()
    full = predict.start_crf(tensor, image[None], DenseCRFParams())()
    assert full[0].numpy().tobytes() == dense_crf(image, prob).tobytes() != half[0].numpy().tobytes()
    assert predict.start_crf(tensor, image[None], DenseCRFParams(), height=256)().equal(full)  # more rows than the labels: at theirs


def test_a_batch_goes_through_the_crf_frame_by_frame_in_order():
    """Several frames (refined on worker processes where there are threads for them) give each frame's
    own marginals, in the batch's order."""
    import torch

    from vscr_cli.stages import predict

    scenes = [_square_scene(64, side) for side in (16, 24, 32)]
    images = np.stack([image for image, _ in scenes])
    prob = torch.from_numpy(np.stack([_spilled_probabilities(np.roll(mask, (3, 3), (0, 1)), cell=8) for _, mask in scenes]))
    batch = predict.start_crf(prob, images, DenseCRFParams())()
    one_by_one = torch.cat([predict.start_crf(prob[i : i + 1], images[i : i + 1], DenseCRFParams())() for i in range(3)])
    assert batch.equal(one_by_one)
    assert len({tuple(frame.argmax(0).flatten().tolist()) for frame in batch}) == 3  # three different results


def test_crf_labels_at_fewer_rows_still_move_the_label_and_return_the_full_size(monkeypatch):
    """``work``: the mean field runs on the image and labels shrunk to it (a quarter of the pixels at
    half the rows); the labels come back at full size, still on the colour edge."""
    from vscr_cli.core import crf

    image, mask = _square_scene(128, 48)
    rough = np.roll(mask, (6, 6), (0, 1))
    seen = []
    original = crf._mean_field
    monkeypatch.setattr(crf, "_mean_field", lambda picture, *rest: seen.append(picture.shape) or original(picture, *rest))
    refined = crf_labels(image, rough.astype(np.int64), 2, work=(64, 64))
    assert seen == [(64, 64, 3)] and refined.shape == (128, 128)
    assert _iou(rough, mask) < 0.8 and _iou(refined == 1, mask) > 0.9
