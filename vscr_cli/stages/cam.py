"""CAM stage: an actor classifier fine-tuned on single-tag videos, Grad-CAM++ maps, SLIC pseudo-labels.

Paper Sec. 4.2: an ImageNet classifier (ResNet-50 there) is fine-tuned on the frames of the
single-action training videos to recognise the actor; Grad-CAM++ on its last convolutional
stage gives the tagged actor's activation map; SLIC superpixels whose mean activation reaches
the threshold (0.5) take the video's actor-action tag, the rest is background.

Labeled and unlabeled samples (Sec. 3.3): a video with exactly one tag gets CAM pseudo-labels
(D_c); a video with several tags or none gets no CAM (D_u: ``pseudo`` is 255 everywhere).
The paper names the ``none`` action as the reason unlabeled samples exist ("this unlabeled
sample is not avoidable since we have none category in the dataset"): its CAMs come from a
classifier of single-action clips. Ours recognises actors, which a ``<actor>-none`` video shows
as well as any, so by default such a video is labeled (``none_policy="labeled"``, measured on
davis-dev: docs/cam.md); ``none_policy="unlabeled"`` is the paper's rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAMPlusPlus
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from skimage.filters import threshold_otsu
from skimage.segmentation import slic
from torch import nn

from vscr_cli import console, labels, weights
from vscr_cli.checkpoints import check_record, config_from, fit_state, read_json, save_weights
from vscr_cli.core.crf import crf_labels
from vscr_cli.core.motion import normalise_motion, residual_flow
from vscr_cli.core.precision import autocast
from vscr_cli.errors import VscrError
from vscr_cli.datasets import load_tags
from vscr_cli.sources import discover
from vscr_cli.settings.run import RunOptions
from vscr_cli.stages.runner import RunReport, VideoResult, VideoTask, frame_batches, write_per_video
from vscr_cli import schemas
from vscr_cli.schemas import CAM, PSEUDO
from vscr_cli.settings.cam import (
    DEFAULT_CAM_FLIP,
    DEFAULT_CAM_HEIGHTS,
    DEFAULT_CAM_PAD,
    DEFAULT_NONE_POLICY,
    CamParams,
    ClassifierConfig,
)
from vscr_cli.store import folder_output
from vscr_cli.tags import require_tags
from vscr_cli.video import FrameSelection, VideoSource, resize_to_height

log = logging.getLogger("vscr")

CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_CONFIG = "classifier.json"
#: The kind of output a classifier folder is (store.folder_output); a cam store's default one is
#: named after it: ``out/exp.v2.zarr`` -> ``out/exp.v2.classifier``.
CLASSIFIER_KIND = "classifier"
STORE_SUFFIXES = (".zarr.zip", ".zarr")
SCHEMA = schemas.CAMS


# -- which videos are labeled ---------------------------------------------------------------------
def cam_tag(tags: Sequence[int], none_policy: str = DEFAULT_NONE_POLICY) -> int | None:
    """The tag a video's CAM pseudo-labels take, or None when the video is unlabeled (D_u)."""
    if len(tags) != 1:
        return None
    if none_policy == "unlabeled" and labels.ACTIONS[labels.action_of(tags[0]) - 1] == "none":
        return None
    return tags[0]


# -- the classifier -------------------------------------------------------------------------------
def build_classifier(config: ClassifierConfig, imagenet_state_dict: Mapping[str, torch.Tensor] | None) -> nn.Module:
    """An actor classifier: (B, 3, H, W) normalised RGB -> (B, 7) logits."""
    return config.architecture.classifier(len(config.classes), imagenet_state_dict)


def to_input(frames: np.ndarray, config: ClassifierConfig, device: torch.device) -> torch.Tensor:
    """(B, H, W, 3) uint8 frames of one size -> (B, 3, h, w) normalised at ``config.input_height``."""
    images = torch.from_numpy(np.stack([resize_to_height(f, config.input_height) for f in frames])).to(device)
    images = images.permute(0, 3, 1, 2).float() / 255
    mean, std = (torch.tensor(v, device=device).view(1, 3, 1, 1) for v in config.architecture.mean_std)
    return (images - mean) / std


@dataclass
class LabeledFrame:
    frame: np.ndarray  # (H, W, 3) uint8
    actor: int  # class index 0..6


def _augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and random crops of 80-100% of the frame, resized back."""
    _, _, height, width = images.shape
    out = torch.empty_like(images)
    for i, image in enumerate(images):
        scale = 0.8 + 0.2 * torch.rand(1, generator=generator).item()
        h, w = max(8, int(height * scale)), max(8, int(width * scale))
        top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
        crop = image[:, top : top + h, left : left + w]
        if torch.rand(1, generator=generator).item() < 0.5:
            crop = crop.flip(-1)
        out[i] = F.interpolate(crop[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return out


def fit_classifier(
    train: Sequence[LabeledFrame],
    holdout: Sequence[LabeledFrame],
    config: ClassifierConfig,
    imagenet_state_dict: Mapping[str, torch.Tensor] | None,
    device: torch.device,
    dtype: torch.dtype | None,
    on_step: Callable[[int], None] | None = None,
) -> nn.Module:
    """Fine-tune an ImageNet classifier on actor-labelled frames; sets ``config.accuracy`` on ``holdout``.

    AdamW (lr ``config.learning_rate``, cosine decay) over ``config.epochs`` epochs of
    flipped/cropped frames, under autocast ``dtype`` when given.
    """
    if not train:
        raise VscrError("no single-tag frames to fine-tune the actor classifier on")
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model = build_classifier(config, imagenet_state_dict).to(device)
    steps_per_epoch = -(-len(train) // config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs * steps_per_epoch)
    model.train()
    for _ in range(config.epochs):
        for batch in _batches(train, config.batch_size, generator):
            images = _augment(to_input(np.stack([s.frame for s in batch]), config, device), generator)
            targets = torch.tensor([s.actor for s in batch], device=device)
            with autocast(device, dtype):
                loss = F.cross_entropy(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if on_step is not None:
                on_step(1)
    model.eval()
    config.train_frames, config.holdout_frames = len(train), len(holdout)
    config.fitted_actors = sorted({config.classes[sample.actor] for sample in train})
    config.accuracy = classify_accuracy(model, holdout, config, device) if holdout else None
    return model


def _batches(samples: Sequence[LabeledFrame], size: int, generator: torch.Generator) -> Iterable[list[LabeledFrame]]:
    """Shuffled batches whose frames share one size (so they stack)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for index in torch.randperm(len(samples), generator=generator).tolist():
        groups.setdefault(samples[index].frame.shape, []).append(index)
    batches = [[samples[i] for i in g[k : k + size]] for g in groups.values() for k in range(0, len(g), size)]
    for index in torch.randperm(len(batches), generator=generator).tolist():
        yield batches[index]


@torch.inference_mode()
def classify_accuracy(model: nn.Module, samples: Sequence[LabeledFrame], config: ClassifierConfig, device: torch.device) -> float:
    correct = 0
    for start in range(0, len(samples), config.batch_size):
        batch = samples[start : start + config.batch_size]
        groups: dict[tuple[int, ...], list[LabeledFrame]] = {}
        for sample in batch:
            groups.setdefault(sample.frame.shape, []).append(sample)
        for group in groups.values():
            logits = model(to_input(np.stack([s.frame for s in group]), config, device))
            correct += int((logits.argmax(1).cpu() == torch.tensor([s.actor for s in group])).sum())
    return correct / len(samples)


def save_classifier(folder: Path, model: nn.Module, config: ClassifierConfig) -> None:
    """Write ``classifier.safetensors`` and ``classifier.json`` into ``folder`` (made when missing;
    vscr cam builds it through store.folder_output, so it appears whole)."""
    folder.mkdir(exist_ok=True)
    save_weights(folder / CLASSIFIER_WEIGHTS, model.state_dict())
    (folder / CLASSIFIER_CONFIG).write_text(json.dumps(asdict(config), indent=2))


def read_classifier_config(folder: Path) -> ClassifierConfig:
    """The ``classifier.json`` of a classifier folder, checked (one line naming it when malformed)."""
    where = folder / CLASSIFIER_CONFIG
    config = config_from(ClassifierConfig, read_json(where), where)
    check_record(config, where)
    return config


def load_classifier(folder: Path, device: torch.device) -> tuple[nn.Module, ClassifierConfig]:
    """A classifier saved by :func:`save_classifier`."""
    config = read_classifier_config(folder)
    state = weights.load_local_state_dict(folder / CLASSIFIER_WEIGHTS)
    model = build_classifier(config, None)
    fit_state(model, state, folder / CLASSIFIER_WEIGHTS, f"a {config.arch} classifier")
    return model.eval().to(device), config


# -- activation maps and pseudo-labels --------------------------------------------------------------
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
    as long as the extractor (recreating it per batch leaks memory in grad-cam). Runs in
    fp32: grad-cam converts activations and gradients to NumPy.
    """

    def __init__(
        self,
        model: nn.Module,
        config: ClassifierConfig,
        device: torch.device,
        heights: Sequence[int] = DEFAULT_CAM_HEIGHTS,
        pad: float = DEFAULT_CAM_PAD,
        flip: bool = DEFAULT_CAM_FLIP,
    ) -> None:
        self.model = model.eval().to(device)
        self.configs = [replace(config, input_height=height) for height in heights]
        self.device = device
        self.pad = pad
        self.flip = flip
        self.cam = GradCAMPlusPlus(model=self.model, target_layers=[config.architecture.cam_layer(self.model)])

    def _maps(self, inputs: torch.Tensor, actor: int) -> torch.Tensor:
        """(B, 3, h, w) inputs -> (B, h, w) Grad-CAM++ maps, taken on the reflect-padded inputs."""
        margin = round(self.pad * inputs.shape[-2])
        if margin:
            inputs = F.pad(inputs, (margin, margin, margin, margin), mode="reflect")
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


def superpixels(frame: np.ndarray, segments: int) -> np.ndarray:
    """SLIC superpixels of an (H, W, 3) uint8 frame: (H, W) int64 ids from 0."""
    return slic(frame, n_segments=segments, compactness=10, start_label=0)


def pseudo_label(activation: np.ndarray, regions: np.ndarray, tag: int, threshold: float, doubt_band: float = 0.0) -> np.ndarray:
    """(H, W) uint8: ``tag`` on superpixels whose mean activation is >= ``threshold``, IGNORE on those
    within ``doubt_band`` below it (neither side's evidence), else 0."""
    count = regions.max() + 1
    mean = (np.bincount(regions.ravel(), weights=activation.ravel(), minlength=count) / np.maximum(np.bincount(regions.ravel(), minlength=count), 1))[regions]
    label = np.where(mean >= threshold, tag, labels.BACKGROUND)
    if doubt_band > 0:
        label[(mean < threshold) & (mean >= threshold - doubt_band)] = labels.IGNORE
    return label.astype(np.uint8)


def evidence(activations: np.ndarray, motion: np.ndarray | None, motion_weight: float) -> np.ndarray:
    """(T, H, W) actor evidence in [0, 1]: the activation maps mixed with normalised motion (weight ``motion_weight``)."""
    if motion is None or motion_weight == 0:
        return activations
    return (1 - motion_weight) * activations + motion_weight * motion


def video_threshold(values: np.ndarray, threshold: float | None) -> float:
    """``threshold``, or with None Otsu's threshold of one video's (T, H, W) evidence values."""
    return float(threshold_otsu(values.ravel())) if threshold is None else threshold


def pseudo_labels(values: np.ndarray, regions: np.ndarray, tag: int, threshold: float | None, doubt_band: float = 0.0) -> np.ndarray:
    """(T, H, W) uint8 pseudo-labels of one video from its (T, H, W) evidence and superpixel ids."""
    cut = video_threshold(values, threshold)
    return np.stack([pseudo_label(value, region, tag, cut, doubt_band) for value, region in zip(values, regions)])


def motion_partners(indices: Sequence[int], total: int, gap: int) -> list[int]:
    """The frame each chosen frame's flow goes to: ``gap`` frames later, or earlier at the video's end."""
    return [i + gap if i + gap < total else max(0, i - gap) for i in indices]


def load_extractor(folder: Path, classifier_sha256: str, device: torch.device, heights: tuple[int, ...], pad: float, flip: bool) -> CamExtractor:
    """A CamExtractor of the classifier saved in ``folder`` (the sha256 only keys per-process caches)."""
    model, config = load_classifier(folder, device)
    return CamExtractor(model, config, device, heights, pad, flip)


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
    and 255 (no CAM) and ``labeled`` False. With ``params.motion_weight`` > 0 each chosen
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
    partners = motion_partners(indices, video.count_frames(), params.motion_gap) if params.motion_weight > 0 else []
    read = dict(video.read(sorted(set(indices) | set(partners)), selection.height))
    frames = np.stack([read[i] for i in indices])
    activations = np.concatenate([extractor(batch, labels.actor_of(tag) - 1) for batch in frame_batches(zip(indices, frames), batch_size, on_frames)])
    motion = normalise_motion(np.stack([residual_flow(read[i], read[j]) for i, j in zip(indices, partners)])) if partners else None
    regions = np.stack([superpixels(frame, params.slic_segments) for frame in frames])
    pseudo = pseudo_labels(evidence(activations, motion, params.motion_weight), regions, tag, params.threshold, params.doubt_band)
    if params.crf:  # the doubtful superpixels are the CRF's to decide
        pseudo = np.stack([np.where(crf_labels(frame, np.where(label == labels.IGNORE, -1, label == tag), 2), tag, 0).astype(np.uint8) for frame, label in zip(frames, pseudo)])
    return VideoResult(indices, {CAM: np.round(activations * 255).astype(np.uint8), PSEUDO: pseudo}, attrs)


def fitting_frames(
    videos: Sequence[VideoSource],
    tags: Mapping[str, Sequence[int]],
    selection: FrameSelection,
    config: ClassifierConfig,
    none_policy: str,
) -> tuple[list[LabeledFrame], list[LabeledFrame]]:
    """(train, held-out) actor-labelled frames from the labeled videos.

    Up to ``config.frames_per_video`` evenly spread frames per video; the last
    ``holdout_fraction`` of each video's frames (in time) is held out, so held-out frames are
    never neighbours of training frames.
    """
    train: list[LabeledFrame] = []
    holdout: list[LabeledFrame] = []
    for video in videos:
        tag = cam_tag(tags[video.video_id], none_policy)
        if tag is None:
            continue
        chosen = video.select(FrameSelection(every=selection.every, max_frames=config.frames_per_video))
        cut = len(chosen) - int(round(config.holdout_fraction * len(chosen)))
        for position, (_, frame) in enumerate(video.read(chosen, selection.height)):
            (train if position < cut else holdout).append(LabeledFrame(frame, labels.actor_of(tag) - 1))
    return train, holdout


def classifier_folder(output: Path | None, classifier: Path | None) -> Path | None:
    """Where the classifier is kept: ``classifier``, else beside a named output, named by its whole
    name less the store suffix (``exp.v2.zarr`` -> ``exp.v2.classifier``)."""
    if classifier is not None or output is None:
        return classifier
    stem = next((output.name.removesuffix(suffix) for suffix in STORE_SUFFIXES if output.name.endswith(suffix)), output.name)
    return output.with_name(f"{stem}.classifier")


def reusable_classifier(folder: Path, config: ClassifierConfig, requested: Collection[str], overwrite: bool) -> bool:
    """Whether ``folder`` holds a classifier to reuse: one that records the fitting settings
    ``requested`` (names of ClassifierConfig fields: the command's --arch, --epochs, --fit-frames,
    --input-height and --seed, where given) as ``config`` has them. One that records others is
    refused in one line, or with ``overwrite`` is not reused (a new one replaces it)."""
    if not (folder / CLASSIFIER_WEIGHTS).is_file():
        return False
    recorded = read_classifier_config(folder)
    changed = [name for name in requested if getattr(recorded, name) != getattr(config, name)]
    if not changed:
        return True
    fitted = ", ".join(f"{name} {getattr(recorded, name)!r}" for name in changed)
    asked = ", ".join(f"{name} {getattr(config, name)!r}" for name in changed)
    if not overwrite:
        raise VscrError(f"{folder}: holds a classifier fitted with {fitted}, not {asked}: pass --overwrite to refit it, or --classifier DIR to fit one elsewhere")
    console.log.info("refitting the classifier in %s (it was fitted with %s)", folder, fitted)
    return False


def run(
    sources: Sequence[str],
    output: Path | None,
    tags: str,
    device: torch.device,
    dtype: torch.dtype | None,
    params: CamParams = CamParams(),
    config: ClassifierConfig = ClassifierConfig(),
    classifier: Path | None = None,
    selection: FrameSelection = FrameSelection(),
    split: str = "all",
    batch_size: int = 1,
    weights_file: Path | None = None,
    options: RunOptions = RunOptions(),
    requested: Collection[str] = (),
) -> RunReport:
    """``vscr cam``: fit (or reuse) the actor classifier, then the cam store of ``sources`` at
    ``output`` (None: zip bytes on stdout). ``params`` and ``config`` give the options; the
    classifier's digest and accuracy and the frame selection are filled in here. ``dtype``: the
    fine-tuning's autocast (the maps are taken in fp32).

    The classifier folder (``classifier``, else the output's: :func:`classifier_folder`) is reused
    when it holds a classifier fitted with the settings ``requested`` (:func:`reusable_classifier`);
    otherwise the one fitted here is written to it as a ``classifier`` output (store.folder_output:
    a folder vscr did not make is never written, an existing one replaced whole, and only with
    ``options.overwrite``)."""
    videos = discover(sources, a2d_split=split)
    video_tags = require_tags([v.video_id for v in videos], load_tags(tags), tags)
    folder = classifier_folder(output, classifier)
    if folder is not None and reusable_classifier(folder, config, requested, options.overwrite):
        model, config = load_classifier(folder, device)
        console.log.info("reusing the classifier in %s (held-out accuracy %s)", folder, config.accuracy)
        if unfitted := unfitted_actors(config, videos, video_tags, params.none_policy):
            console.log.warning(
                "the classifier in %s was not fine-tuned on %s: its maps of them come from an output it never trained; pass a new --classifier DIR to fit one on these videos",
                folder, ", ".join(unfitted),
            )
    else:
        config = replace(config)  # fitting fills in its accuracy
        with folder_output(folder, CLASSIFIER_KIND, options.overwrite) if folder is not None else contextlib.nullcontext() as staging:
            model = _fit(videos, video_tags, selection, config, params.none_policy, weights_file, device, dtype)
            if staging is not None:
                save_classifier(staging, model, config)
        if folder is not None:
            console.log.info("saved the classifier to %s", folder)
        else:
            console.log.warning("the classifier is not saved (pass --classifier DIR to keep it)")
    params = replace(
        params,
        classifier_sha256=weights.sha256_file(folder / CLASSIFIER_WEIGHTS) if folder else "",
        classifier_accuracy=config.accuracy,
        selection=selection.to_json(),
    )
    labeled = sum(cam_tag(video_tags[v.video_id], params.none_policy) is not None for v in videos)
    console.log.info("%d labeled videos get CAMs, %d are unlabeled", labeled, len(videos) - labeled)
    inputs = {"sources": [str(s) for s in sources], "split": split, "tags": str(tags), "classifier": str(folder) if folder else None}
    task_options = {"video_tags": video_tags, "selection": selection, "params": params, "batch_size": batch_size}
    with contextlib.ExitStack() as cleanup:
        if folder is not None:  # workers (and this process) load the saved classifier once each
            compute = VideoTask(video_cam, "extractor", load_extractor, (folder, params.classifier_sha256, device, params.cam_heights, params.cam_pad, params.cam_flip), task_options)
        elif options.scheduler is not None:
            raise VscrError("--scheduler: the workers load the classifier from a folder: pass -o PATH or --classifier DIR")
        else:
            extractor = CamExtractor(model, config, device, params.cam_heights, params.cam_pad, params.cam_flip)
            cleanup.callback(extractor.close)  # the Grad-CAM hooks
            compute = lambda video, on_frames: video_cam(video, extractor=extractor, on_frames=on_frames, **task_options)  # noqa: E731
        return write_per_video(output, SCHEMA.kind, params.to_json(), inputs, videos, selection, compute, options)


def unfitted_actors(config: ClassifierConfig, videos: Sequence[VideoSource], video_tags: Mapping[str, Sequence[int]], none_policy: str) -> list[str]:
    """The actors of the labeled ``videos`` that a reused classifier saw no frame of ([] when it does
    not record what it was fitted on)."""
    if config.fitted_actors is None:
        return []
    needed = {config.classes[labels.actor_of(tag) - 1] for v in videos if (tag := cam_tag(video_tags[v.video_id], none_policy)) is not None}
    return sorted(needed - set(config.fitted_actors))


def _fit(
    videos: Sequence[VideoSource],
    video_tags: Mapping[str, Sequence[int]],
    selection: FrameSelection,
    config: ClassifierConfig,
    none_policy: str,
    weights_file: Path | None,
    device: torch.device,
    dtype: torch.dtype | None,
) -> nn.Module:
    """Fine-tune the ImageNet classifier of ``config`` on the labeled videos, with a progress bar."""
    imagenet = weights.load_state_dict(config.architecture.weights, weights_file)
    train, holdout = fitting_frames(videos, video_tags, selection, config, none_policy)
    console.log.info("fine-tuning %s on %d frames (%d held out)", config.arch, len(train), len(holdout))
    steps = config.epochs * -(-len(train) // config.batch_size)
    with console.progress() as bar:
        task = bar.add_task("fine-tuning", total=steps)
        model = fit_classifier(train, holdout, config, imagenet, device, dtype, lambda n: bar.advance(task, n))
    if config.accuracy is not None:
        console.log.info("held-out actor accuracy: %.1f%% on %d frames", 100 * config.accuracy, len(holdout))
    return model
