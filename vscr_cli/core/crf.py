"""Fully connected CRF post-processing of class probabilities (Krähenbühl & Koltun, NeurIPS 2011).

The network's class maps are at stride 8 and upsampled bilinearly, so a mask spills up to a cell
around the actor. DeepLab (Chen et al., TPAMI 2017, the paper's actor backbone) and SPML's
inference scripts (``inference_softmax_crf*.py``) sharpen them with a dense CRF whose pairwise
terms favour equal labels on nearby pixels of similar colour; this wraps pydensecrf's mean-field
inference with their settings. No file I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from pydensecrf.densecrf import DenseCRF2D
from pydensecrf.utils import unary_from_labels, unary_from_softmax


@dataclass(frozen=True)
class DenseCRFParams:
    """Mean-field iterations and the two pairwise kernels' widths (pixels, colour levels) and
    weights: DeepLab's and SPML's settings (``--crf_*`` of SPML's inference scripts)."""

    iterations: int = 10
    pos_xy_std: float = 1.0
    pos_weight: float = 3.0
    bi_xy_std: float = 67.0
    bi_rgb_std: float = 3.0
    bi_weight: float = 4.0

    def to_json(self) -> dict:
        return asdict(self)


#: How sure the unary of :func:`crf_labels` is of the given label (pydensecrf's ``gt_prob``; the
#: other classes share the rest): weak, so colour edges move a rough mask's boundary.
LABEL_CONFIDENCE = 0.6
#: How far the aspect ratios of an image and its maps may differ (the rounding of a frame resized to
#: another height) before they are taken for different frames.
ASPECT_TOLERANCE = 0.02


def dense_crf(
    image: np.ndarray, prob: np.ndarray, params: DenseCRFParams = DenseCRFParams(), work: tuple[int, int] | None = None
) -> np.ndarray:
    """image (H', W', 3) uint8 RGB, prob (C, H, W) class probabilities -> (C, H, W) float32 marginals
    after ``params.iterations`` mean-field steps (each pixel's sum over C is 1). The mean field runs
    at ``work`` (h, w), or at (H, W) without it: the image and the probabilities are resized to it
    (area) and the marginals upsampled bilinearly to (H, W) (:func:`at_working_size`)."""
    size = prob.shape[1:]
    image, prob = at_working_size(image, prob.astype(np.float32), work or size, cv2.INTER_AREA)
    return upsampled(_mean_field(image, unary_from_softmax(prob), prob.shape[0], params), size)


def crf_labels(
    image: np.ndarray,
    label: np.ndarray,
    classes: int,
    params: DenseCRFParams = DenseCRFParams(),
    confidence: float = LABEL_CONFIDENCE,
    work: tuple[int, int] | None = None,
) -> np.ndarray:
    """image (H', W', 3) uint8 RGB, label (H, W) class indices in [0, classes) or -1 (unsure) -> (H, W)
    int64 class indices after the dense CRF, its unary ``confidence`` on the given label and uniform
    where unsure (pseudo-labels through the same CRF as the network's probabilities), run at ``work``
    as :func:`dense_crf` runs (the labels resized by nearest neighbour)."""
    size = label.shape
    image, (label,) = at_working_size(image, label[None].astype(np.int16), work or size, cv2.INTER_NEAREST)
    unary = unary_from_labels(label.astype(np.int64) + 1, classes, confidence, zero_unsure=True)
    return upsampled(_mean_field(image, unary, classes, params), size).argmax(0)


def at_working_size(image: np.ndarray, maps: np.ndarray, work: tuple[int, int], interpolation: int) -> tuple[np.ndarray, np.ndarray]:
    """image (H', W', 3) and maps (C, H, W) of the same frame (the same aspect ratio within
    :data:`ASPECT_TOLERANCE`, else ValueError) -> both at ``work`` (h, w): the image by area, the maps
    by ``interpolation`` (OpenCV's; each map alone). What is already that size is returned as it is."""
    (rows, cols), (height, width) = image.shape[:2], maps.shape[1:]
    if abs(rows * width / (cols * height) - 1) > ASPECT_TOLERANCE:
        raise ValueError(f"image {image.shape[:2]} and maps {maps.shape[1:]} differ in aspect ratio: not the same frame")
    work = tuple(work)
    if image.shape[:2] != work:
        image = cv2.resize(image, work[::-1], interpolation=cv2.INTER_AREA)
    if maps.shape[1:] != work:
        maps = np.stack([cv2.resize(m, work[::-1], interpolation=interpolation) for m in maps])
    return image, maps


def upsampled(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(C, h, w) float32 -> (C, H, W) for ``size`` (H, W), bilinear (half-pixel centres, as torch's
    ``align_corners=False``); the same array where it already is that size."""
    if maps.shape[1:] == tuple(size):
        return maps
    return np.stack([cv2.resize(m, tuple(size)[::-1], interpolation=cv2.INTER_LINEAR) for m in maps])


def _mean_field(image: np.ndarray, unary: np.ndarray, classes: int, params: DenseCRFParams) -> np.ndarray:
    """(C, H, W) marginals of the CRF with ``unary`` (C, H*W) energies on ``image`` (H, W, 3) uint8."""
    height, width = image.shape[:2]
    if unary.shape[-1] != height * width:
        raise ValueError(f"image {image.shape[:2]} and unary energies of {unary.shape[-1]} pixels differ in size")
    crf = DenseCRF2D(width, height, classes)
    crf.setUnaryEnergy(np.ascontiguousarray(unary.reshape(classes, -1).astype(np.float32)))
    crf.addPairwiseGaussian(sxy=params.pos_xy_std, compat=params.pos_weight)
    crf.addPairwiseBilateral(sxy=params.bi_xy_std, srgb=params.bi_rgb_std, rgbim=np.ascontiguousarray(image), compat=params.bi_weight)
    marginals = np.asarray(crf.inference(params.iterations), dtype=np.float32)
    return marginals.reshape(classes, height, width)
