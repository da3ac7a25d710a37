"""Stage I's actor classifier: which videos are labeled, the ImageNet classifier fine-tuned on their
frames, and its folder (fitted once, reused while its settings match)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vscr_cli import console, labels, weights
from vscr_cli.checkpoints import check_record, fit_state, read_json, save_weights
from vscr_cli.settings.records import config_from
from vscr_cli.core.precision import autocast
from vscr_cli.errors import VscrError
from vscr_cli.settings.cam import (
    DEFAULT_NONE_POLICY,
    ClassifierConfig,
)
from vscr_cli.video import FrameSelection, VideoSource, resize_to_height


log = logging.getLogger("vscr")


CLASSIFIER_WEIGHTS = "classifier.safetensors"
CLASSIFIER_CONFIG = "classifier.json"
#: The kind of output a classifier folder is (store.folder_output); a cam store's default one is
#: named after it: ``out/exp.v2.zarr`` -> ``out/exp.v2.classifier``.
CLASSIFIER_KIND = "classifier"
STORE_SUFFIXES = (".zarr.zip", ".zarr")


def cam_tag(tags: Sequence[int], none_policy: str = DEFAULT_NONE_POLICY) -> int | None:
    """The tag a video's CAM pseudo-labels take, or None when the video is unlabeled (D_u)."""
    if len(tags) != 1:
        return None
    if none_policy == "unlabeled" and labels.ACTIONS[labels.action_of(tags[0]) - 1] == "none":
        return None
    return tags[0]


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


def unfitted_actors(config: ClassifierConfig, videos: Sequence[VideoSource], video_tags: Mapping[str, Sequence[int]], none_policy: str) -> list[str]:
    """The actors of the labeled ``videos`` that a reused classifier saw no frame of ([] when it does
    not record what it was fitted on)."""
    if config.fitted_actors is None:
        return []
    needed = {config.classes[labels.actor_of(tag) - 1] for v in videos if (tag := cam_tag(video_tags[v.video_id], none_policy)) is not None}
    return sorted(needed - set(config.fitted_actors))


def fit_on_videos(
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
