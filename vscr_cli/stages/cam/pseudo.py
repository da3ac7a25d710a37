"""Stage I's activation maps and pseudo-labels: Grad-CAM++ of the tagged actor, motion evidence,
SLIC superpixels over the threshold, and the dense CRF where asked; one video at a time."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from skimage.filters import threshold_otsu
from skimage.segmentation import slic
from torch import nn

from vscr_cli import labels
from vscr_cli.core.crf import crf_labels
from vscr_cli.core.models.folding import folded
from vscr_cli.core.precision import autocast
from vscr_cli.core.motion_evidence import normalise_motion, residual_flow
from vscr_cli.stages.runner import VideoResult, frame_batches
from vscr_cli.stages.workers import start_on_workers
from vscr_cli.schemas import CAM, PSEUDO
from vscr_cli.settings.cam import (
    DEFAULT_CAM_FLIP,
    DEFAULT_CAM_HEIGHTS,
    DEFAULT_CAM_PAD,
    DISAGREEMENT_CUES,
    CamParams,
    ClassifierConfig,
)
from vscr_cli.video import FrameSelection, VideoSource, resize_to_height, shrunk_to_height
from vscr_cli.stages.cam.classifier import cam_tag, load_classifier, to_input

class CamExtractor:
    """Multi-scale Grad-CAM++ of the tagged actor: (B, H, W, 3) uint8 frames -> (B, H, W) float32 in [0, 1].

    The frames are seen at each of ``heights``; the maps (each min-max normalised by
    grad-cam) are resized to the frame, averaged and divided by their maximum. A last stage of
    stride 32 gives maps only 7 cells high at 224, too coarse for actors a fraction of the
    frame tall; 448 resolves them but fragments large actors: the average of both did best
    over synthetic and real footage (docs/cam.md). ``pad`` reflects each input by that
    fraction of its height on every side before the map is taken and crops the map back (the
    network's zero padding otherwise lights up bands along the image borders); ``flip`` also
    takes the maps of the mirrored frames and averages them in. One Grad-CAM++ object lives
    as long as the extractor (recreating it per batch leaks memory in grad-cam). ``dtype``: the
    classifier runs under that autocast (bf16 where the CPU has it natively: half the time); the
    cut layer's output reaches grad-cam in fp32, as grad-cam hands activations and gradients to
    NumPy, which has no bfloat16 (decision record 0030).

    Grad-CAM++ needs the gradient of the class score with respect to the target layer's output
    only, so the extractor freezes the weights and cuts the graph at that layer (its output
    becomes a leaf that requires grad): the backward pass runs through the head alone, and the
    forward pass below the layer keeps no graph. The maps are those of a full backward pass. The
    batch norms are folded into their convolutions first (:func:`~vscr_cli.core.models.folding.folded`).
    """

    def __init__(
        self,
        model: nn.Module,
        config: ClassifierConfig,
        device: torch.device,
        heights: Sequence[int] = DEFAULT_CAM_HEIGHTS,
        pad: float = DEFAULT_CAM_PAD,
        flip: bool = DEFAULT_CAM_FLIP,
        dtype: torch.dtype | None = None,
    ) -> None:
        sample = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
        self.model = folded(model.eval().to(device), lambda network: network(sample)).requires_grad_(False)
        self.configs = [replace(config, input_height=height) for height in heights]
        self.device = device
        self.pad = pad
        self.flip = flip
        self.dtype = dtype
        target = config.architecture.cam_layer(self.model)
        # registered before grad-cam's hooks, so they see (and hook the gradient of) the leaf
        self._cut = target.register_forward_hook(lambda module, args, output: output.detach().float().requires_grad_(True))
        self.cam = GradCAMPlusPlus(model=self.model, target_layers=[target])

    def _maps(self, inputs: torch.Tensor, actor: int) -> torch.Tensor:
        """(B, 3, h, w) inputs -> (B, h, w) Grad-CAM++ maps, taken on the reflect-padded inputs."""
        margin = round(self.pad * inputs.shape[-2])
        if margin:
            inputs = F.pad(inputs, (margin, margin, margin, margin), mode="reflect")
        with autocast(self.device, self.dtype):
            maps = torch.from_numpy(self.cam(input_tensor=inputs, targets=[ClassifierOutputTarget(actor)] * len(inputs)))
        return maps[:, margin : maps.shape[1] - margin, margin : maps.shape[2] - margin]

    def __call__(self, frames: np.ndarray, actor: int) -> np.ndarray:
        height, width = frames.shape[1:3]
        total = torch.zeros(len(frames), 1, height, width)
        for config in self.configs:
            inputs = to_input(frames, config, self.device)
            maps = self._maps(inputs, actor)
            if self.flip:
                maps = maps + self._maps(inputs.flip(-1), actor).flip(-1)
            total += F.interpolate(maps[:, None], size=(height, width), mode="bilinear", align_corners=False)
        peak = total.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
        return (total / peak)[:, 0].clamp(0, 1).numpy()

    def close(self) -> None:
        self.cam.__exit__(None, None, None)
        self._cut.remove()


def superpixels(frame: np.ndarray, segments: int, height: int = 0) -> np.ndarray:
    """SLIC superpixels of an (H, W, 3) uint8 frame: (H, W) int64 ids from 0. With ``height`` below
    H, SLIC runs on the frame shrunk to that many rows (area) and its ids are resized back (nearest):
    its cost grows with the pixels."""
    size = shrunk_to_height(frame.shape[:2], height)
    shrunk = size != frame.shape[:2]
    regions = slic(resize_to_height(frame, size[0]) if shrunk else frame, n_segments=segments, compactness=10, start_label=0)
    return cv2.resize(regions.astype(np.int32), frame.shape[1::-1], interpolation=cv2.INTER_NEAREST).astype(np.int64) if shrunk else regions


def superpixel_means(values: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(H, W): each pixel's superpixel mean of the (H, W) ``values`` (``regions``: ids from 0)."""
    count = regions.max() + 1
    return (np.bincount(regions.ravel(), weights=values.ravel(), minlength=count) / np.maximum(np.bincount(regions.ravel(), minlength=count), 1))[regions]


def pseudo_label(activation: np.ndarray, regions: np.ndarray, tag: int, threshold: float, doubt_band: float = 0.0) -> np.ndarray:
    """(H, W) uint8: ``tag`` on superpixels whose mean activation is >= ``threshold``, IGNORE on those
    within ``doubt_band`` below it (neither side's evidence), else 0."""
    mean = superpixel_means(activation, regions)
    label = np.where(mean >= threshold, tag, labels.BACKGROUND)
    if doubt_band > 0:
        label[(mean < threshold) & (mean >= threshold - doubt_band)] = labels.IGNORE
    return label.astype(np.uint8)


def evidence(activations: np.ndarray, motion: np.ndarray | None, motion_weight: float | None) -> np.ndarray:
    """(T, H, W) actor evidence in [0, 1]: the activation maps mixed with normalised motion, weight
    ``motion_weight``; None weighs the two per frame by how little of the frame each claims
    (:func:`spread_weights`)."""
    if motion is None or motion_weight == 0:
        return activations
    weight = spread_weights(activations, motion)[:, None, None] if motion_weight is None else motion_weight
    return (1 - weight) * activations + weight * motion


def spread_weights(activations: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """(T,) motion weight per frame for (T, H, W) activation and motion maps in [0, 1]: each cue's
    weight inversely proportional to its mean over the frame (the share of the frame it claims), so
    a cue lit everywhere (a class map on a crowd of its class, residual motion of a shaking camera)
    counts less: ``mean(activation) / (mean(activation) + mean(motion))``."""
    spread_a, spread_m = activations.mean(axis=(1, 2)), motion.mean(axis=(1, 2))
    total = spread_a + spread_m
    return np.where(total > 0, spread_a / np.maximum(total, 1e-12), 0.5)


def video_threshold(values: np.ndarray, threshold: float | None) -> float:
    """``threshold``, or with None Otsu's threshold of one video's (T, H, W) evidence values."""
    return float(threshold_otsu(values.ravel())) if threshold is None else threshold


def pseudo_labels(values: np.ndarray, regions: np.ndarray, tag: int, threshold: float | None, doubt_band: float = 0.0, cues: Sequence[np.ndarray] = ()) -> np.ndarray:
    """(T, H, W) uint8 pseudo-labels of one video from its (T, H, W) evidence and superpixel ids.
    ``cues``: the (T, H, W) maps the evidence mixes; a superpixel labelled background where one of
    them alone reaches the threshold (the cues disagree) is left unlabelled (IGNORE)."""
    cut = video_threshold(values, threshold)
    pseudo = np.stack([pseudo_label(value, region, tag, cut, doubt_band) for value, region in zip(values, regions)])
    for cue in cues:
        lit = np.stack([superpixel_means(frame, region) >= cut for frame, region in zip(cue, regions)])
        pseudo[lit & (pseudo == labels.BACKGROUND)] = labels.IGNORE
    return pseudo


def motion_partners(indices: Sequence[int], total: int, gap: int) -> list[int]:
    """The frame each chosen frame's flow goes to: ``gap`` frames later, or earlier at the video's end."""
    return [i + gap if i + gap < total else max(0, i - gap) for i in indices]


def load_extractor(folder: Path, classifier_sha256: str, device: torch.device, heights: tuple[int, ...], pad: float, flip: bool, dtype: torch.dtype | None = None) -> CamExtractor:
    """A CamExtractor of the classifier saved in ``folder`` (the sha256 only keys per-process caches)."""
    model, config = load_classifier(folder, device)
    return CamExtractor(model, config, device, heights, pad, flip, dtype)


def video_cam(
    video: VideoSource,
    video_tags: Mapping[str, Sequence[int]],
    selection: FrameSelection,
    extractor: CamExtractor,
    params: CamParams,
    batch_size: int,
    on_frames: Callable[[int], None] | None = None,
) -> VideoResult:
    """``cam`` (T, H, W) uint8 activation x 255 and ``pseudo`` (T, H, W) uint8 ids of one video.

    ``video_tags`` maps video ids to tags. An unlabeled video (see :func:`cam_tag`) gets zeros
    and 255 (no CAM) and ``labeled`` False. With ``params.motion_weight`` not 0 each chosen
    frame's camera-compensated flow to a frame ``params.motion_gap`` away is mixed into the
    evidence the superpixels vote on. With ``params.crf`` the pseudo-labels go through the dense CRF
    of vscr predict (:func:`~vscr_cli.core.crf.crf_labels`, its unary from the pseudo-label).
    """
    indices = video.select(selection)
    tags = video_tags[video.video_id]
    tag = cam_tag(tags, params.none_policy)
    attrs = {"labeled": tag is not None, "tags": list(tags)}
    if tag is None:
        shapes = [frames.shape[:3] for frames in frame_batches(video.read(indices, selection.height), batch_size, on_frames)]
        cams = np.concatenate([np.zeros(shape, np.uint8) for shape in shapes])
        return VideoResult(indices, {CAM: cams, PSEUDO: np.full(cams.shape, labels.IGNORE, np.uint8)}, attrs)
    partners = motion_partners(indices, video.count_frames(), params.motion_gap) if params.motion_weight != 0 else []
    read = dict(video.read(sorted(set(indices) | set(partners)), selection.height))
    frames = np.stack([read[i] for i in indices])
    activations = np.concatenate([extractor(batch, labels.actor_of(tag) - 1) for batch in frame_batches(zip(indices, frames), batch_size, on_frames)])
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:  # SLIC and the flow release the GIL
        flows = list(pool.map(residual_flow, frames, [read[j] for j in partners])) if partners else []
        regions = np.stack(list(pool.map(superpixels, frames, itertools.repeat(params.slic_segments), itertools.repeat(params.slic_height))))
    motion = normalise_motion(np.stack(flows)) if flows else None
    maps = {"activation": activations, "motion": motion}
    cues = [maps[name] for name in DISAGREEMENT_CUES[params.ignore_disagreement] if maps[name] is not None]
    pseudo = pseudo_labels(evidence(activations, motion, params.motion_weight), regions, tag, params.threshold, params.doubt_band, cues)
    if params.crf:  # the doubtful superpixels are the CRF's to decide
        work = shrunk_to_height(frames.shape[1:3], params.crf_height)
        unsure_or_tag = np.where(pseudo == labels.IGNORE, -1, pseudo == tag)
        refined = start_on_workers(functools.partial(crf_labels, classes=2, work=work), frames, unsure_or_tag)()
        pseudo = np.where(np.stack(refined), tag, 0).astype(np.uint8)
    return VideoResult(indices, {CAM: np.round(activations * 255).astype(np.uint8), PSEUDO: pseudo}, attrs)
