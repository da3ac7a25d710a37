"""What training reads: the frame (and flow) cache, the sample reader with its crops and
augmentations, and the batches each iteration draws (see :mod:`vscr_cli.stages.train`)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from vscr_cli import labels
from vscr_cli.core.flow import FARNEBACK, PairFlows, clip_pairs, stack_flows
from vscr_cli.core.models.motion import MOTION_ENCODERS, clip_frames
from vscr_cli.schemas import FLOW, FLOWS, FRAMES, RGB, SECOND, SEGMENTS
from vscr_cli.settings.train import TrainConfig
from vscr_cli.store import (
    Store,
    StoreWriter,
    open_store,
)
from vscr_cli.stages.training_data import TrainingData
from vscr_cli.video import resize_to_height


FRAME_CACHE = "frames.zarr"
FLOW_CACHE = "flows.zarr"
READ_CACHE_BYTES = 1 << 30  # decoded arrays a sample reader keeps in memory (per process)


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
