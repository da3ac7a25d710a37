"""Training stage: the two-stream VSCR network under the unified contrastive objective (paper Sec. 3-4).

Data: the frames of an edges store and a cam store that agree on videos and frame indices,
the frames themselves (read once into a frame cache, a ``frames`` store in the output folder;
for the flow encoder also the optical flow of every frame pair the motion clips use, computed
once into a ``flows`` store beside it) and the video tags. Each process keeps the arrays it
has read in memory (up to ``READ_CACHE_BYTES``). Every iteration draws its batch and
augmentations from a generator seeded by (seed, iteration, slot), so a run resumed from a
checkpoint sees exactly the batches the uninterrupted run would have seen, and each
DistributedDataParallel process takes its own slots of the same global batch.

Per sample: a random square window, ``crop / s`` pixels a side for a scale ``s`` drawn uniformly
from [``scale_min``, ``scale_max``] (SPML: 0.5-1.5) and resized to ``crop`` x ``crop`` (frames
smaller than the window are padded, and the padding ignored), and a horizontal flip, applied
alike to the frame, its edge segments, its CAM pseudo-label and the motion clip (``clip_length`` frames ``clip_stride`` apart, centred
on the frame; for the flow encoder, the Farneback optical flow between consecutive clip
frames, computed on the whole frames and cropped like them, scaled by the resize, x-flow negated on a
flip). Images and flows are resized bilinearly, labels and segments by nearest neighbour.

Step: the objective of Eq. 4 (vscr_cli.core.losses) on the pixel embeddings, plus the
cross-entropy of the segmentation head on CAM pseudo-labels of labeled frames (the head sees
detached embeddings); SGD with momentum, weight decay and the poly learning-rate policy.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import statistics
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vscr_cli import console, labels, weights
from vscr_cli.checkpoints import read_checkpoint
from vscr_cli.core.flow import FARNEBACK, PairFlows, clip_pairs, stack_flows
from vscr_cli.core.losses import ObjectiveTerms, PrototypeMemory, action_tag_loss, vscr_objective
from vscr_cli.core.models.motion import MOTION_ENCODERS, clip_frames
from vscr_cli.core.models.vscr import VSCROutput, labels_at_cells
from vscr_cli.core.params import ObjectiveConfig
from vscr_cli.core.precision import autocast
from vscr_cli.errors import VscrError
from vscr_cli.models import MODEL_WEIGHTS, build_model, save_model
from vscr_cli.schemas import FLOW, FLOWS, FRAMES, RGB, SECOND, SEGMENTS
from vscr_cli.settings.model import DEFAULT_MODEL, MODEL_CONFIG, MODEL_KIND, MODEL_METRICS, logged_steps
from vscr_cli.settings.train import AUTO_PRESET, PRESETS, TrainConfig
from vscr_cli.store import (
    OUTPUT_RECORD,
    OutputLock,
    Store,
    StoreWriter,
    changed_keys,
    check_output,
    check_staging,
    mark_output,
    open_store,
    output_kind,
    replace_output,
    staging_path,
    writing,
)
from vscr_cli.stages.board import BOARD_FOLDER, PICTURE_FRAMES, TrainingBoard, prediction_panels
from vscr_cli.stages.training_data import TrainingData, open_training_inputs
from vscr_cli.video import resize_to_height
from vscr_cli.weights import first_line

CHECKPOINT = "checkpoint.pt"
FRAME_CACHE = "frames.zarr"
FLOW_CACHE = "flows.zarr"
READ_CACHE_BYTES = 1 << 30  # decoded arrays a sample reader keeps in memory (per process)


def preset_for(device: torch.device) -> str:
    """The preset ``auto`` stands for on ``device``: ``paper`` on CUDA, ``cpu`` elsewhere."""
    return "paper" if device.type == "cuda" else "cpu"


def make_config(preset: str, overrides: Mapping[str, Any], where: Path | str = "training options") -> TrainConfig:
    """A preset with options (from a TOML file and the command line) laid over it. ``where`` names
    the options' origin in the refusal of an unknown name or a value of the wrong type (the TOML
    file: the command line's options are typed)."""
    if preset not in PRESETS:
        raise VscrError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = sorted(set(overrides) - set(TrainConfig.options()))
    if unknown:
        raise VscrError(f"{where}: unknown training options: {', '.join(unknown)}")
    config = TrainConfig.from_record({**PRESETS[preset], **overrides}, where)
    config.validate()
    return config


def read_options(path: Path) -> dict[str, Any]:
    """The training options of a TOML file (``vscr train --config``: names as in docs/train.md)."""
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise VscrError(f"{path}: not a valid TOML file ({first_line(error)})") from error


# -- data ------------------------------------------------------------------------------------------
@dataclass
class FrameCache:
    """What training reads besides the edges and cam stores, decoded once.

    ``rgb``: a ``frames`` store, arrays ``rgb`` (N, H, W, 3) uint8 over the frames of its
    ``frame_index`` (the store frames and their clips). ``flows`` (flow encoder only): a
    ``flows`` store holding each frame pair the clips use once, in order: ``frame_index`` (P,)
    the pair's first frame, ``second`` (P,) int64 its second frame, ``flow`` (P, H, W, 2)
    float32 Farneback flow (x, y) in pixels. Without ``flows`` the flow is recomputed per sample
    on the cropped clip (the path before this cache existed; benchmarks compare the two).
    """

    rgb: Store
    flows: Store | None


def build_frame_cache(data: TrainingData, config: TrainConfig, folder: Path, on_video: Callable[[], None] | None = None) -> FrameCache:
    """Decode every frame training needs once into ``folder/frames.zarr`` and, for the flow
    encoder, compute the flow of every pair the clips use once into ``folder/flows.zarr``
    (both resumable like any store)."""
    params = {"height": data.height, "input_height": config.input_height, "clip_length": config.clip_length, "clip_stride": config.clip_stride}
    flow_params = {**params, "farneback": list(FARNEBACK)}
    flow_writer = StoreWriter(folder / FLOW_CACHE, kind=FLOWS.kind, params=flow_params, resume=True) if config.motion == "flow" else contextlib.nullcontext()
    with StoreWriter(folder / FRAME_CACHE, kind=FRAMES.kind, params=params, resume=True) as writer, flow_writer as flows:
        for video in data.videos:
            todo = video.video_id not in writer.completed or (flows is not None and video.video_id not in flows.completed)
            if todo:
                clips = [clip_frames(int(t), video.total_frames, config.clip_length, config.clip_stride) for t in video.frame_index]
                needed = sorted({f for clip in clips for f in clip})
                rgb = np.stack([resize_to_height(frame, config.working_height(frame.shape[0])) for _, frame in data.sources[video.video_id].read(needed, data.height)])
                if video.video_id not in writer.completed:
                    writer.write_video(video.video_id, needed, {RGB: rgb})
                if flows is not None and video.video_id not in flows.completed:
                    _write_flows(flows, video.video_id, clips, dict(zip(needed, rgb)))
            if on_video is not None:
                on_video()
    return open_frame_cache(folder, config)


def _write_flows(writer: StoreWriter, video_id: str, clips: Sequence[Sequence[int]], frames: Mapping[int, np.ndarray]) -> None:
    """The flow of every pair of ``clips`` (frames by number), each computed once, written pair by pair."""
    pairs = sorted({pair for clip in clips for pair in clip_pairs(clip)})
    height, width = next(iter(frames.values())).shape[:2]
    video = writer.video(video_id, [a for a, _ in pairs], {SECOND: ((), np.int64), FLOW: ((height, width, 2), np.float32)})
    video.write(SECOND, 0, np.array([b for _, b in pairs], np.int64))
    flows = PairFlows(frames.__getitem__)
    for position, (first, second) in enumerate(pairs):
        video.write(FLOW, position, flows.pair(first, second)[None])
        flows.forget(first)  # pairs are sorted: no later pair starts before this one
    writer.complete(video_id)


def open_frame_cache(folder: Path, config: TrainConfig) -> FrameCache:
    """The cache :func:`build_frame_cache` wrote into ``folder``."""
    return FrameCache(open_store(folder / FRAME_CACHE, FRAMES.kind), open_store(folder / FLOW_CACHE, FLOWS.kind) if config.motion == "flow" else None)


class ArrayCache:
    """Whole per-video arrays of stores, read on first use and kept in memory up to ``budget`` bytes
    (least recently used dropped first): a sample then costs no store reads once its video is in."""

    def __init__(self, budget: int = READ_CACHE_BYTES) -> None:
        self.budget = budget
        self.arrays: OrderedDict[tuple[str, str, str], np.ndarray] = OrderedDict()
        self.size = 0

    def get(self, store: Store, video_id: str, name: str) -> np.ndarray:
        """The (T, ...) array ``name`` of a video."""
        key = (store.location, video_id, name)
        if key in self.arrays:
            self.arrays.move_to_end(key)
            return self.arrays[key]
        array = store.read(video_id, name)
        self.arrays[key] = array
        self.size += array.nbytes
        while self.size > self.budget and len(self.arrays) > 1:
            self.size -= self.arrays.popitem(last=False)[1].nbytes
        return array


class SampleReader:
    """Builds training samples from the stores and the frame cache (one per process)."""

    def __init__(self, data: TrainingData, cache: FrameCache, config: TrainConfig, mean_std: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
        self.data = data
        self.config = config
        self.cache = cache
        self.arrays = ArrayCache()
        self.positions = {v.video_id: {int(f): i for i, f in enumerate(cache.rgb.frame_index(v.video_id))} for v in data.videos}
        self.pairs: dict[str, dict[tuple[int, int], int]] = {}
        if cache.flows is not None:
            for v in data.videos:
                seconds = cache.flows.read(v.video_id, SECOND)
                self.pairs[v.video_id] = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(cache.flows.frame_index(v.video_id), seconds))}
        self.mean = np.array(mean_std[0], np.float32) * 255
        self.std = np.array(mean_std[1], np.float32) * 255

    def _frame(self, store: Store, video_id: str, name: str, position: int) -> np.ndarray:
        """Entry ``position`` of a video's array ``name`` (from memory once the video's array is in)."""
        return self.arrays.get(store, video_id, name)[position]

    def _rgb(self, video_id: str, frame: int) -> np.ndarray:
        return self._frame(self.cache.rgb, video_id, RGB, self.positions[video_id][frame])

    def _flow(self, video_id: str, first: int, second: int) -> np.ndarray:
        assert self.cache.flows is not None
        return self._frame(self.cache.flows, video_id, FLOW, self.pairs[video_id][(first, second)])

    def sample(self, video: int, position: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One augmented sample: ``image`` (3, c, c) float32, ``edge`` / ``cam`` / ``target`` (c, c)
        int64, ``ignore`` (c, c) bool, ``tags`` (43,), ``actions`` (9,), ``labeled`` (), ``motion`` (..., c, c)."""
        config = self.config
        entry = self.data.videos[video]
        frame_number = int(entry.frame_index[position])
        image = self._rgb(entry.video_id, frame_number)
        edge = at_size(self._frame(self.data.edges, entry.video_id, SEGMENTS, position), image.shape[:2]).astype(np.int64)
        pseudo = at_size(self._frame(self.data.cams, entry.video_id, self.data.pseudo_name, position), image.shape[:2])
        height, width = image.shape[:2]
        crop = config.crop
        jitter = (config.scale_min, config.scale_max) != (1.0, 1.0)
        span = max(1, round(crop / rng.uniform(config.scale_min, config.scale_max))) if jitter else crop
        labeled = bool(entry.labeled[position])
        top, left = crop_position(pseudo if labeled else None, (height, width), span, config.crop_max_class_share, rng)
        flip = bool(rng.random() < 0.5)
        nearest = np.minimum(((np.arange(crop) + 0.5) * span / crop).astype(np.int64), span - 1)

        def window(array: np.ndarray, fill: float, smooth: bool = False) -> np.ndarray:
            """The sample's window of ``array`` (H, W, ...), padded with ``fill``, resized to the crop
            (bilinear when ``smooth``, else nearest neighbour) and flipped."""
            part = array[top : top + span, left : left + span]
            if part.shape[:2] != (span, span):
                pad = [(0, span - part.shape[0]), (0, span - part.shape[1])] + [(0, 0)] * (array.ndim - 2)
                part = np.pad(part, pad, constant_values=fill)
            if span != crop:
                part = cv2.resize(part, (crop, crop), interpolation=cv2.INTER_LINEAR) if smooth else part[nearest][:, nearest]
            return part[:, ::-1] if flip else part

        ignore = window(np.zeros((height, width), bool), True)
        cam = labels.CLASS_INDEX[window(pseudo, labels.IGNORE)].astype(np.int64)
        cam[cam == labels.IGNORE] = -1
        sample = {
            "image": ((window(image, 0, smooth=True).astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1),
            "edge": np.where(ignore, -1, window(edge, -1)),
            "cam": cam if labeled else np.full_like(cam, -1),
            "ignore": ignore,
            "tags": labels.multi_hot(entry.tags),
            "actions": labels.action_multi_hot(entry.tags),
            "labeled": np.array(labeled),
        }
        if config.motion != "none":
            clip = clip_frames(frame_number, entry.total_frames, config.clip_length, config.clip_stride)
            if self.cache.flows is not None:
                # displacements grow with the resize; a horizontal flip negates x-flow
                mirror = np.array([-1 if flip else 1, 1], np.float32) * np.float32(crop / span)
                sample["motion"] = stack_flows([window(self._flow(entry.video_id, a, b), 0, smooth=True) * mirror for a, b in clip_pairs(clip)])
            else:
                sample["motion"] = MOTION_ENCODERS[config.motion].clip_input([window(self._rgb(entry.video_id, f), 0, smooth=True) for f in clip])
        return {key: np.ascontiguousarray(value) if value.ndim else value for key, value in sample.items()}


def at_size(label_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A (H, W) map of labels or segment ids resized to ``size`` (H', W') by nearest neighbour (the
    frames at the working height, :meth:`ModelConfig.working_height`, their maps at the stores')."""
    if label_map.shape == size:
        return label_map
    return cv2.resize(label_map, size[::-1], interpolation=cv2.INTER_NEAREST)


#: Redraws of a training window whose classes are too uneven (``crop_max_class_share``; mmsegmentation's 10).
CROP_REDRAWS = 10


def crop_position(pseudo: np.ndarray | None, size: tuple[int, int], span: int, max_class_share: float, rng: np.random.Generator) -> tuple[int, int]:
    """(top, left) of a ``span``-pixel window of a (H, W) = ``size`` frame, uniform over the frame.

    With ``max_class_share`` below 1 and the frame's pseudo-labels given (A2D class ids, IGNORE
    unlabelled), a window whose labelled pixels are all one class, or more than that share one class,
    is redrawn up to :data:`CROP_REDRAWS` times and the last draw kept (mmsegmentation's RandomCrop
    ``cat_max_ratio``): crops of a small actor's frame then hold the actor, not only background.
    """
    height, width = size
    for _ in range(CROP_REDRAWS + 1):
        top = int(rng.integers(0, max(height - span, 0) + 1))
        left = int(rng.integers(0, max(width - span, 0) + 1))
        if pseudo is None or max_class_share >= 1:
            break
        counts = np.bincount(pseudo[top : top + span, left : left + span].ravel(), minlength=labels.IGNORE + 1)[: labels.IGNORE]
        if np.count_nonzero(counts) > 1 and counts.max() <= max_class_share * counts.sum():
            break
    return top, left


def batch_slots(config: TrainConfig, iteration: int, count: int, rank: int, world: int) -> list[tuple[int, np.random.Generator]]:
    """This process's samples of the global batch at ``iteration``: (sample number, generator) pairs."""
    chooser = np.random.default_rng([config.seed, iteration])
    chosen = chooser.choice(count, size=config.batch_size, replace=count < config.batch_size)
    return [(int(chosen[slot]), np.random.default_rng([config.seed, iteration, slot])) for slot in range(rank, config.batch_size, world)]


class IterationBatches(torch.utils.data.IterableDataset):
    """Yields collated batches for iterations ``start .. config.iterations - 1`` (workers take turns)."""

    def __init__(self, reader: SampleReader, start: int, rank: int, world: int) -> None:
        self.reader, self.start, self.rank, self.world = reader, start, rank, world
        self.samples = reader.data.samples

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        for iteration in range(self.start + worker, self.reader.config.iterations, workers):
            items = [self.reader.sample(*self.samples[n], rng) for n, rng in batch_slots(self.reader.config, iteration, len(self.samples), self.rank, self.world)]
            batch = {key: torch.from_numpy(np.stack([item[key] for item in items])) for key in items[0]}
            batch["iteration"] = torch.tensor(iteration)
            yield batch


# -- the loop --------------------------------------------------------------------------------------
@dataclass
class StepLog:
    iteration: int
    total: float
    edge: float
    cam: float
    tag: float
    classifier: float
    action: float
    learning_rate: float
    seconds: float
    data_seconds: float

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_from_env(device: torch.device) -> Distributed:
    """Join the process group torchrun set up (gloo on CPU, nccl on CUDA; one GPU per process,
    chosen by LOCAL_RANK), or run alone. Works the same on one node or several (env:// rendezvous)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed()
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size())


def poly_learning_rate(config: TrainConfig, iteration: int) -> float:
    return config.learning_rate * (1 - iteration / config.iterations) ** config.poly_power


def _gather(tensor: torch.Tensor, world: Distributed) -> torch.Tensor:
    """Concatenate a (N_r, ...) tensor of every process (sizes may differ)."""
    if world.world == 1:
        return tensor
    size = torch.tensor([tensor.shape[0]], device=tensor.device)
    sizes = [torch.zeros_like(size) for _ in range(world.world)]
    dist.all_gather(sizes, size)
    largest = int(max(s.item() for s in sizes))
    padded = torch.zeros((largest, *tensor.shape[1:]), dtype=tensor.dtype, device=tensor.device)
    padded[: tensor.shape[0]] = tensor
    parts = [torch.zeros_like(padded) for _ in range(world.world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(s.item())] for part, s in zip(parts, sizes)])


def train(
    data: TrainingData,
    cache: FrameCache,
    config: TrainConfig,
    folder: Path,
    device: torch.device,
    dtype: torch.dtype | None,
    backbone_state: Mapping[str, torch.Tensor] | None,
    motion_state: Mapping[str, torch.Tensor] | None = None,
    resume: Path | None = None,
    world: Distributed = Distributed(),
    on_step: Callable[[StepLog], None] | None = None,
    record: Mapping[str, Any] | None = None,
    tensorboard: bool = True,
) -> list[StepLog]:
    """Train ``config.iterations`` iterations into ``folder`` (its checkpoints, metrics, TensorBoard
    events with ``tensorboard`` and the model), continuing from the checkpoint ``resume`` when given;
    returns the logged steps of this run."""
    torch.manual_seed(config.seed)
    model = build_model(config, backbone_state, motion_state).to(device)
    pretrained = [p for p in model.backbone.parameters() if p.requires_grad]
    new_layers = [p for name, p in model.named_parameters() if p.requires_grad and not name.startswith("backbone.")]
    optimizer = torch.optim.SGD(
        [{"params": pretrained, "lr_scale": 1.0}, {"params": new_layers, "lr_scale": config.new_layers_lr_scale}],
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    memory = PrototypeMemory(config.memory_iterations)
    tag_memory = PrototypeMemory(config.memory_iterations if config.tag_memory else 0)
    start = 0
    if resume is not None:
        state = read_checkpoint(resume, device, ("config", "model", "optimizer", "memory", "tag_memory", "iteration"))
        if changed := changed_keys(state["config"], config.to_json()):
            raise VscrError(f"{resume}: cannot resume with different training options ({', '.join(changed)})")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        memory.load_state_dict(state["memory"])
        tag_memory.load_state_dict(state["tag_memory"])
        start = int(state["iteration"])
    trainable = nn.parallel.DistributedDataParallel(model) if world.world > 1 else model
    reader = SampleReader(data, cache, config, config.architecture.mean_std)
    loader = torch.utils.data.DataLoader(
        IterationBatches(reader, start, world.rank, world.world),
        batch_size=None,
        num_workers=config.workers,
        persistent_workers=False,
    )
    logs: list[StepLog] = []
    metrics = _continued_metrics(folder / MODEL_METRICS, start) if world.main else None
    board = TrainingBoard(folder, start, enabled=world.main and tensorboard)
    shown = picture_samples(reader, data) if board.writer is not None else []
    model.train()
    clock = time.perf_counter()
    for batch in loader:
        iteration = int(batch.pop("iteration"))
        data_seconds = time.perf_counter() - clock
        batch = {key: value.to(device) for key, value in batch.items()}
        torch.manual_seed(config.seed * 1_000_003 + iteration * world.world + world.rank)  # dropout: stateless, so resume is exact
        learning_rate = poly_learning_rate(config, iteration)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * group["lr_scale"]
        with autocast(device, dtype):
            output = trainable(batch["image"], batch.get("motion"))
        loss, terms, classifier, action = training_losses(output, batch, memory, tag_memory, config.objective, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        memory.update(_gather(terms.cam_prototypes.detach(), world), _gather(terms.cam_labels, world))
        if tag_memory.capacity:
            tag_memory.update(_gather(terms.tag_prototypes.detach(), world), _gather(terms.tag_labels, world))
        seconds = time.perf_counter() - clock
        log = StepLog(iteration + 1, *(float(t.detach()) for t in (loss, terms.edge, terms.cam, terms.tag, classifier, action)), learning_rate, seconds, data_seconds)
        if not all(math.isfinite(v) for v in (log.total, log.edge, log.cam, log.tag, log.classifier, log.action)):
            raise VscrError(f"training diverged at iteration {log.iteration} (a loss is not finite); lower --learning-rate")
        logs.append(log)
        if metrics is not None and (log.iteration % config.log_every == 0 or log.iteration == config.iterations):
            metrics.write(json.dumps(log.to_json()) + "\n")
            metrics.flush()
            board.scalars(log.to_json())
        if world.main and (log.iteration % config.checkpoint_every == 0 or log.iteration == config.iterations):
            _save_checkpoint(folder / CHECKPOINT, model, optimizer, {"memory": memory, "tag_memory": tag_memory}, log.iteration, config)
            if shown:
                board.pictures(log.iteration, prediction_panels(model, shown, config.architecture.mean_std, device))
        if on_step is not None:
            on_step(log)
        clock = time.perf_counter()
    if world.main:
        save_model(folder, model, config, dict(record or {}))
        if metrics is not None:
            metrics.close()
    board.close()
    return logs


def picture_samples(reader: SampleReader, data: TrainingData, count: int = PICTURE_FRAMES) -> list[dict[str, np.ndarray]]:
    """Fixed training samples the board draws at every checkpoint: the middle frame of each of the
    first ``count`` videos with pseudo-labels (else of any), its window drawn with a fixed seed."""
    labeled = [v for v, entry in enumerate(data.videos) if entry.labeled.any()]
    chosen = (labeled or list(range(len(data.videos))))[:count]
    return [reader.sample(v, len(data.videos[v].frame_index) // 2, np.random.default_rng(v)) for v in chosen]


def _continued_metrics(path: Path, start: int) -> TextIO:
    """``metrics.jsonl`` opened to log the iterations after ``start`` (0, or a resumed checkpoint's):
    the rows an interrupted run logged after that checkpoint, or left half-written, are dropped, so
    every iteration is logged once."""
    kept = [row for row in logged_steps(path) if row["iteration"] <= start] if start else []
    metrics = path.open("w")
    metrics.writelines(json.dumps(row) + "\n" for row in kept)
    return metrics


def training_losses(
    output: VSCROutput,
    batch: Mapping[str, torch.Tensor],
    memory: PrototypeMemory,
    tag_memory: PrototypeMemory,
    objective: ObjectiveConfig,
    config: TrainConfig,
) -> tuple[torch.Tensor, ObjectiveTerms, torch.Tensor, torch.Tensor]:
    """(total loss, the objective's terms, the head's cross-entropy, the action head's term) of one
    batch's network output.

    Label maps (B, H, W) are sampled at the embedding cells' centres (:func:`~vscr_cli.core.models.vscr.labels_at_cells`); the
    head is trained on the CAM pseudo-labels of labeled frames, the action head (if any) on the
    action tags of tagged frames (of labeled frames only without unlabeled samples).
    """
    size = output.embedding.shape[-2:]
    edge = labels_at_cells(batch["edge"], size)
    cam = labels_at_cells(batch["cam"], size)
    ignore = labels_at_cells(batch["ignore"].long(), size).bool()
    terms = vscr_objective(output.embedding, edge, cam, batch["tags"], batch["labeled"], ignore, memory, objective, tag_memory)
    head_target = torch.where(batch["labeled"][:, None, None] & ~ignore, cam, -1)
    if (head_target >= 0).any():
        classifier = F.cross_entropy(output.logits.float(), head_target, ignore_index=-1)
    else:
        classifier = output.logits.sum() * 0
    total = terms.total + config.classifier_weight * classifier
    action = output.logits.new_zeros(())
    if output.actions is not None:
        frames = (batch["tags"].sum(dim=1) > 0) & (batch["labeled"] | objective.use_unlabeled)
        action = action_tag_loss(output.actions, batch["actions"], frames)
        total = total + config.action_weight * action
    return total, terms, classifier, action


def _save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, memories: Mapping[str, PrototypeMemory], iteration: int, config: TrainConfig
) -> None:
    """Model, optimizer and memory banks' state, written atomically (torch.save of tensors and plain values)."""
    temporary = path.with_name(f".{path.name}.tmp")
    banks = {name: memory.state_dict() for name, memory in memories.items()}
    torch.save(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), **banks, "iteration": iteration, "config": config.to_json()},
        temporary,
    )
    temporary.replace(path)

# -- the command's run -------------------------------------------------------------------------------
#: Steps measured (the first, which warms up, left out) before the run's duration is estimated.
ESTIMATE_AFTER = 4


def run(
    edges: str,
    cam: str,
    device: torch.device,
    dtype: torch.dtype | None,
    output: Path = DEFAULT_MODEL,
    sources: Sequence[str] | None = None,
    tags: str | None = None,
    preset: str = AUTO_PRESET,
    overrides: Mapping[str, Any] | None = None,
    backbone_weights: Path | None = None,
    motion_weights: Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    config_file: Path | None = None,
    tensorboard: bool = True,
) -> Path:
    """``vscr train``: train the options ``overrides`` laid over those of ``config_file`` (TOML) and
    ``preset`` on an edges and a cam store into the model folder ``output`` (one process, or each
    process of a torchrun group), with TensorBoard events in its ``tensorboard/`` (``tensorboard``);
    returns the folder. The run builds the folder beside ``output`` (:func:`staged_model`) and moves
    it into place only when training ends."""
    preset_name = preset_for(device) if preset == AUTO_PRESET else preset
    options = {**(read_options(config_file) if config_file else {}), **(overrides or {})}
    config = make_config(preset_name, options, config_file or "training options")
    motion_weights_name = MOTION_ENCODERS[config.motion].weights if config.motion in MOTION_ENCODERS else None
    if motion_weights is not None and motion_weights_name is None:
        raise VscrError(f"--motion-weights: --motion {config.motion} takes no pretrained weights")
    world = distributed_from_env(device)
    if world.main:  # before any work; the other processes follow the main one
        output = check_output(output, MODEL_KIND, overwrite, resume)
    if config.batch_size % world.world:
        raise VscrError(f"--batch-size {config.batch_size} does not split over {world.world} processes")
    with staged_model(output, overwrite, resume, world.main) as folder, open_training_inputs(edges, cam, sources, tags, config.labeled_fraction) as data:
        backbone_state = weights.load_state_dict(config.architecture.weights, backbone_weights, option="--backbone-weights")
        motion_state = weights.load_state_dict(motion_weights_name, motion_weights, option="--motion-weights") if motion_weights_name else None
        with console.progress() as bar:
            task = bar.add_task("caching frames" + (" and optical flow" if config.motion == "flow" else ""), total=len(data.videos))
            cache = build_frame_cache(data, config, folder, lambda: bar.advance(task)) if world.main else None
        if world.world > 1:
            dist.barrier()
            cache = cache or open_frame_cache(folder, config)
        labeled = sum(int(v.labeled.sum()) for v in data.videos)
        total = sum(len(v.frame_index) for v in data.videos)
        console.log.info("%d frames (%d labeled) of %d videos; %s on %s (%s), %d process(es)", total, labeled, len(data.videos), config.backbone, device, dtype or "fp32", world.world)
        console.log.info("preset %s%s: %d iterations of batch %d, %dx%d crops; writing %s/", preset_name, " (auto)" if preset == AUTO_PRESET else "", config.iterations, config.batch_size, config.crop, config.crop, output)
        record = {"inputs": {"edges": edges, "cam": cam, "sources": list(sources or data.edges.record.inputs.get("sources", []))}, "frame_height": data.height}
        with console.progress() as bar:
            task = bar.add_task("training", total=config.iterations)
            step_seconds: list[float] = []

            def report(log: StepLog) -> None:
                bar.update(task, completed=log.iteration, description=f"training  loss {log.total:.3f} (edge {log.edge:.2f} cam {log.cam:.2f} tag {log.tag:.2f} head {log.classifier:.2f} action {log.action:.2f})")
                step_seconds.append(log.seconds)
                if len(step_seconds) == ESTIMATE_AFTER + 1 and log.iteration < config.iterations:
                    left, per_step = config.iterations - log.iteration, statistics.median(step_seconds[1:])
                    console.log.info("about %s more for the remaining %d iterations (%.2f s per iteration measured)", console.duration(per_step * left), left, per_step)

            checkpoint = resume_checkpoint(output) if resume else None
            if tensorboard and world.main:
                console.log.info("training curves: tensorboard --logdir %s", folder / BOARD_FOLDER)
            train(data, cache, config, folder, device, dtype, backbone_state, motion_state, checkpoint, world, report if world.main else None, record, tensorboard)
    console.log.info("model written to %s/", output)
    return output


def resume_checkpoint(target: Path) -> Path | None:
    """The checkpoint ``--resume`` continues: an interrupted run's in the staging folder, else the
    finished model's in ``target`` (None: training starts from the first iteration)."""
    return next((path for path in (staging_path(target) / CHECKPOINT, target / CHECKPOINT) if path.is_file()), None)


@contextlib.contextmanager
def staged_model(target: Path, overwrite: bool, resume: bool, main: bool) -> Iterator[Path]:
    """The folder a run trains in (frame cache, checkpoints, metrics, the model), moved over the
    model folder ``target`` (store.replace_output) only when the block ends without error, so that
    ``target`` stays whole until then, after any failure and after a kill.

    The main process holds ``target``'s lock for the whole block. A new or ``--overwrite`` run
    starts a fresh staging folder (refusing to discard an interrupted run's checkpoint without
    ``--overwrite``); ``--resume`` continues the staging folder an interrupted run left, else one
    holding a copy of the finished ``target``'s metrics and frame cache (its checkpoint is read where
    it is: :func:`resume_checkpoint`). On failure a continued staging folder is kept, a new one only
    when this run wrote a checkpoint into it (for ``--resume``; said in a warning), else removed.
    Other processes only get its path.
    """
    staging = staging_path(target)
    if not main:
        yield staging
        return
    with OutputLock(target):
        check_output(target, MODEL_KIND, overwrite, resume)  # again, under the lock
        continued = _open_staging(target, staging, overwrite, resume)
        try:
            with writing(target):
                yield staging
        except BaseException:
            if not continued and (staging / CHECKPOINT).is_file():
                console.log.warning("kept the interrupted run's checkpoint in %s: rerun with --resume to continue it", staging)
            elif not continued:
                shutil.rmtree(staging, ignore_errors=True)
            raise
        replace_output(staging, target)


def _open_staging(target: Path, staging: Path, overwrite: bool, resume: bool) -> bool:
    """Make (or, resuming, keep) the staging folder of ``target`` (see :func:`staged_model`); one
    there that vscr did not make (a symlink, a file, a folder neither empty nor marked) is refused.
    Returns whether an interrupted run's staging folder is continued."""
    check_staging(target, staging, MODEL_KIND)
    if staging.exists():
        if resume and any(staging.iterdir()):
            console.log.info("continuing the interrupted run in %s", staging)
            return True
        if (staging / CHECKPOINT).is_file():
            if not overwrite:
                raise VscrError(f"{target}: an interrupted run left a checkpoint in {staging} (pass --resume to continue it, or --overwrite to start again)")
            console.log.warning("discarding the checkpoint of an interrupted run in %s (--resume would continue it)", staging)
        shutil.rmtree(staging)
    if resume and output_kind(target) == MODEL_KIND:  # extend a finished model: its metrics and frame cache
        shutil.copytree(target, staging, ignore=shutil.ignore_patterns(OUTPUT_RECORD, MODEL_CONFIG, MODEL_WEIGHTS, CHECKPOINT))
    else:
        os.mkdir(staging)
    mark_output(staging, MODEL_KIND)  # last: a staging folder is known as vscr's only once it is whole
    return False
