"""A synthetic actor-action dataset in the exact A2D ``Release/`` layout.

It is built to test what VSCR claims:

* the **actor** is recognisable from appearance: each of the 7 A2D actors has its own
  silhouette filled with crops of its own real photograph shipped with scikit-image
  (astronaut, coffee, colour wheel, retina, motorcycle, the chelsea cat, immunohistochemistry),
  pasted over varied real textures (brick, grass, gravel, moon, text, coins, ...), drawn at
  random, so the scene says nothing of the class (``scene_by_class``: the first actor-action
  class picks the texture, as sky goes with birds and roads with cars in real footage);
* the **action** is recognisable only from motion: every actor is drawn the same way
  whatever it does, at a random place, scale and orientation; what differs is how it moves
  over time (walking, running, jumping, rolling, climbing, flying, crawling, eating or
  staying still). One still frame does not reveal the action.

Videos are single-action (one actor), multi-tag (two actors or one actor twice, each with
its own action) or actor-free, in proportions the caller sets. Like A2D, a few frames per
video are annotated (MATLAB v7.3 files plus colour PNGs); ``dense`` also writes every
frame's label map.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
import skimage.data

from vscr_cli import labels
from vscr_cli.datasets.a2d import VideosetRow, write_annotation, write_videoset
from vscr_cli.errors import VscrError
from vscr_cli.store import folder_output
from vscr_cli.tags import write_tags_csv

FPS = 24

#: Per actor: (photograph, sprite height as a fraction of the frame height).
ACTOR_LOOK: dict[str, tuple[str, float]] = {
    "adult": ("astronaut", 0.55),
    "baby": ("coffee", 0.36),
    "ball": ("colorwheel", 0.24),
    "bird": ("retina", 0.26),
    "car": ("stereo_motorcycle", 0.30),
    "cat": ("chelsea", 0.32),
    "dog": ("immunohistochemistry", 0.34),
}
BACKGROUNDS = ("brick", "grass", "gravel", "moon", "page", "text", "coins", "clock", "hubble_deep_field")


@dataclass(frozen=True)
class SynthConfig:
    """Size and mix of a synthetic dataset."""

    videos: int = 28
    frames: int = 24
    height: int = 120
    width: int = 160
    annotated: int = 3
    multi_fraction: float = 0.2
    empty_fraction: float = 0.1
    test_fraction: float = 0.25
    dense: bool = False
    seed: int = 0
    classes: tuple[int, ...] = labels.VALID_IDS  # the actor-action classes videos are drawn from
    scene_by_class: bool = False  # the background texture is the video's first class's, not random

    def __post_init__(self) -> None:
        checks = [
            (self.videos >= 1, "--videos must be at least 1"),
            (self.frames >= 2, "--frames must be at least 2"),
            (self.height >= 32 and self.width >= 32, "--height and --width must be at least 32"),
            (self.height % 2 == 0 and self.width % 2 == 0, "--height and --width must be even (H.264)"),
            (1 <= self.annotated <= self.frames, "--annotated must be between 1 and --frames"),
            (0 <= self.multi_fraction + self.empty_fraction <= 1, "--multi plus --empty must be between 0 and 1"),
            (min(self.multi_fraction, self.empty_fraction, self.test_fraction) >= 0, "fractions must be >= 0"),
            (self.test_fraction < 1, "--test-fraction must be below 1"),
            (len(self.classes) >= 1 and set(self.classes) <= set(labels.VALID_IDS), "--classes must name valid A2D actor-action classes"),
        ]
        for ok, message in checks:
            if not ok:
                raise VscrError(message)


@dataclass
class SynthVideo:
    """What was written for one video."""

    video_id: str
    tags: tuple[int, ...]
    split: str
    kind: str  # single | multi | empty
    annotated: tuple[int, ...]


@dataclass
class SynthSummary:
    root: str
    config: dict
    videos: list[SynthVideo] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"root": self.root, "config": self.config, "videos": [asdict(v) for v in self.videos]}


# -- appearance ---------------------------------------------------------------------------------
@functools.cache
def _photo(name: str) -> np.ndarray:
    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs come as (left, right, disparity)
        image = image[0]
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _silhouette(actor: str, h: int) -> np.ndarray:
    """(h, w) bool mask of an actor's shape; each actor has its own outline."""
    if actor == "adult":
        w = max(8, int(0.42 * h))
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (w // 2, int(0.12 * h)), int(0.11 * h), 1, -1)
        cv2.ellipse(m, (w // 2, int(0.42 * h)), (int(0.2 * h), int(0.2 * h)), 0, 0, 360, 1, -1)
        cv2.rectangle(m, (int(0.22 * w), int(0.55 * h)), (int(0.45 * w), h - 1), 1, -1)
        cv2.rectangle(m, (int(0.55 * w), int(0.55 * h)), (int(0.78 * w), h - 1), 1, -1)
    elif actor == "baby":
        w = max(8, int(0.8 * h))
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (int(0.3 * w), int(0.3 * h)), int(0.28 * h), 1, -1)
        cv2.ellipse(m, (int(0.6 * w), int(0.65 * h)), (int(0.38 * w), int(0.3 * h)), 0, 0, 360, 1, -1)
    elif actor == "ball":
        w = h
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (w // 2, h // 2), h // 2 - 1, 1, -1)
    elif actor == "bird":
        w = max(8, int(1.6 * h))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (w // 2, int(0.6 * h)), (int(0.3 * w), int(0.22 * h)), 0, 0, 360, 1, -1)
        wing = np.array([[int(0.3 * w), int(0.55 * h)], [int(0.05 * w), 0], [int(0.55 * w), int(0.5 * h)]])
        cv2.fillPoly(m, [wing, wing * [1, 1] + [int(0.3 * w), 0]], 1)
        cv2.fillPoly(m, [np.array([[int(0.8 * w), int(0.5 * h)], [w - 1, int(0.62 * h)], [int(0.8 * w), int(0.72 * h)]])], 1)
    elif actor == "car":
        w = max(8, int(2.0 * h))
        m = np.zeros((h, w), np.uint8)
        cv2.rectangle(m, (0, int(0.4 * h)), (w - 1, int(0.8 * h)), 1, -1)
        cv2.rectangle(m, (int(0.25 * w), int(0.05 * h)), (int(0.7 * w), int(0.45 * h)), 1, -1)
        for cx in (int(0.22 * w), int(0.78 * w)):
            cv2.circle(m, (cx, int(0.8 * h)), int(0.19 * h), 1, -1)
    elif actor == "cat":
        w = max(8, int(1.5 * h))
        m = np.zeros((h, w), np.uint8)
        cv2.ellipse(m, (int(0.45 * w), int(0.65 * h)), (int(0.33 * w), int(0.25 * h)), 0, 0, 360, 1, -1)
        cv2.circle(m, (int(0.8 * w), int(0.35 * h)), int(0.22 * h), 1, -1)
        for ex in (0.7, 0.88):
            ear = np.array([[int((ex - 0.06) * w), int(0.3 * h)], [int(ex * w), 0], [int((ex + 0.06) * w), int(0.3 * h)]])
            cv2.fillPoly(m, [ear], 1)
        cv2.line(m, (int(0.13 * w), int(0.6 * h)), (0, int(0.15 * h)), 1, max(1, int(0.06 * h)))
    elif actor == "dog":
        horse = _photo("horse")[..., 0] == 0  # skimage's horse silhouette: a quadruped outline
        w = max(8, int(h * horse.shape[1] / horse.shape[0]))
        m = cv2.resize(horse.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    else:
        raise ValueError(actor)
    return m.astype(bool)


def _sprite(actor: str, frame_height: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An actor's sprite: (h, w, 3) uint8 texture and (h, w) bool mask."""
    photo_name, size = ACTOR_LOOK[actor]
    h = max(10, int(frame_height * size * rng.uniform(0.85, 1.15)))
    mask = _silhouette(actor, h)
    photo = _photo(photo_name)
    crop_h = int(photo.shape[0] * rng.uniform(0.35, 0.6))
    crop_w = int(photo.shape[1] * rng.uniform(0.35, 0.6))
    y0 = rng.integers(0, photo.shape[0] - crop_h + 1)
    x0 = rng.integers(0, photo.shape[1] - crop_w + 1)
    texture = cv2.resize(photo[y0 : y0 + crop_h, x0 : x0 + crop_w], (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_AREA)
    return texture, mask


def _background(height: int, width: int, rng: np.random.Generator, texture: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8: a random crop of a real texture (``texture``, else a random one), tinted and softened."""
    drawn = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]  # drawn either way: the rest of the video stays as it was
    photo = _photo(texture or drawn).astype(np.float32)
    scale = rng.uniform(0.4, 0.9)
    crop_h, crop_w = int(photo.shape[0] * scale), int(photo.shape[1] * scale)
    y0 = rng.integers(0, photo.shape[0] - crop_h + 1)
    x0 = rng.integers(0, photo.shape[1] - crop_w + 1)
    crop = cv2.resize(photo[y0 : y0 + crop_h, x0 : x0 + crop_w], (width, height), interpolation=cv2.INTER_AREA)
    tint = rng.uniform(0.5, 1.0, size=3).astype(np.float32)
    base = rng.uniform(40, 160, size=3).astype(np.float32)
    return np.clip(0.45 * crop * tint + 0.55 * base, 0, 255).astype(np.uint8)


# -- motion -------------------------------------------------------------------------------------


def _trajectory(action: str, t: np.ndarray, unit: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (dx, dy) in pixels and extra rotation (degrees) over frames ``t`` for an action.

    ``unit`` is 1% of the frame width. Directions are random where the action allows.
    """
    direction = rng.choice([-1.0, 1.0])
    phase = rng.uniform(0, 2 * math.pi)
    zero = np.zeros_like(t)
    if action == "walking":
        return direction * 1.2 * unit * t, 0.6 * unit * np.abs(np.sin(2 * math.pi * t / 8 + phase)), zero
    if action == "running":
        return direction * 3.0 * unit * t, 1.2 * unit * np.abs(np.sin(2 * math.pi * t / 5 + phase)), zero
    if action == "crawling":
        return direction * 0.5 * unit * t, 0.15 * unit * np.sin(2 * math.pi * t / 10 + phase), zero
    if action == "jumping":
        return direction * 0.3 * unit * t, -9.0 * unit * np.abs(np.sin(math.pi * t / 9 + phase)), zero
    if action == "rolling":
        dx = direction * 1.8 * unit * t
        return dx, zero, -direction * np.degrees(dx / (6.0 * unit))
    if action == "climbing":
        return 0.4 * unit * np.sin(2 * math.pi * t / 7 + phase), -1.5 * unit * t, zero
    if action == "flying":
        return direction * 2.2 * unit * t, -0.8 * unit * t + 3.0 * unit * np.sin(2 * math.pi * t / 10 + phase), zero
    if action == "eating":
        return zero, 1.0 * unit * np.abs(np.sin(2 * math.pi * t / 4 + phase)), 6.0 * np.sin(2 * math.pi * t / 4 + phase)
    if action == "none":
        return zero, zero, zero
    raise ValueError(action)


@dataclass
class _Actor:
    label: int
    texture: np.ndarray
    mask: np.ndarray
    centers: np.ndarray  # (T, 2) x, y
    angles: np.ndarray  # (T,) degrees


def _place(label: int, config: SynthConfig, rng: np.random.Generator) -> _Actor:
    actor = labels.ACTORS[labels.actor_of(label) - 1]
    action = labels.ACTIONS[labels.action_of(label) - 1]
    texture, mask = _sprite(actor, config.height, rng)
    t = np.arange(config.frames, dtype=np.float64)
    dx, dy, spin = _trajectory(action, t, config.width / 100.0, rng)
    radius = 0.5 * math.hypot(*mask.shape)
    # choose a start so the whole path stays in the frame (the path shrinks if it cannot)
    span_x, span_y = np.ptp(dx), np.ptp(dy)
    room_x, room_y = max(config.width - 2 * radius * 0.8, 1.0), max(config.height - 2 * radius * 0.8, 1.0)
    shrink = min(1.0, room_x / max(span_x, 1e-6), room_y / max(span_y, 1e-6))
    dx, dy = dx * shrink, dy * shrink
    x0 = rng.uniform(0, max(room_x - np.ptp(dx), 0)) + radius * 0.8 - dx.min()
    y0 = rng.uniform(0, max(room_y - np.ptp(dy), 0)) + radius * 0.8 - dy.min()
    angle0 = rng.uniform(-25, 25)
    return _Actor(label, texture, mask, np.stack([x0 + dx, y0 + dy], axis=1), angle0 + spin)


def _render(actor: _Actor, t: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The actor's texture and mask warped into frame ``t``: (H, W, 3) uint8 and (H, W) bool."""
    h, w = actor.mask.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), float(actor.angles[t]), 1.0)
    matrix[:, 2] += actor.centers[t] - (w / 2, h / 2)
    texture = cv2.warpAffine(actor.texture, matrix, (width, height), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(actor.mask.astype(np.uint8), matrix, (width, height), flags=cv2.INTER_NEAREST)
    return texture, mask.astype(bool)


def _video_labels(kind: str, index: int, order: list[int], rng: np.random.Generator) -> list[int]:
    """The actor-action ids of one video; ``order`` is the shuffled class list, cycled through."""
    if kind == "empty":
        return []
    first = order[index % len(order)]
    if kind == "single":
        return [first]
    actor = labels.actor_of(first)
    same_actor = [i for i in order if labels.actor_of(i) == actor and i != first]
    other_actor = [i for i in order if labels.actor_of(i) != actor]
    others = same_actor if (rng.random() < 0.5 and same_actor) or not other_actor else other_actor
    return [first, int(rng.choice(others))] if others else [first]


def scene_texture(label: int) -> str:
    """The background texture of a video whose first actor-action class is ``label`` (``scene_by_class``)."""
    return BACKGROUNDS[labels.VALID_IDS.index(label) % len(BACKGROUNDS)]


def _frames(actors: list[_Actor], config: SynthConfig, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield per frame: (H, W, 3) RGB, (H, W) label map, (N, H, W) visible instance masks."""
    texture = scene_texture(actors[0].label) if config.scene_by_class and actors else None
    background = _background(config.height, config.width, rng, texture)
    for t in range(config.frames):
        frame = background.copy()
        label_map = np.zeros((config.height, config.width), np.uint8)
        owner = np.full((config.height, config.width), -1, np.int64)
        for n, actor in enumerate(actors):
            texture, mask = _render(actor, t, config.height, config.width)
            frame[mask] = texture[mask]
            label_map[mask] = actor.label
            owner[mask] = n
        yield frame, label_map, np.stack([owner == n for n in range(len(actors))]) if actors else np.zeros((0, *label_map.shape), bool)


def _encode(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        # for a bit-reproducible clip: one thread, and no macroblock-tree rate control (its SIMD
        # path gave different bitstreams for identical input from run to run on these machines)
        stream.options = {"crf": "17", "preset": "medium", "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0:no-mbtree=1"}
        stream.codec_context.thread_count = 1
        for number, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


SYNTH = "synth"  # the kind of output synthesize owns (see vscr_cli.store.output_kind)


def annotated_frames(frames: int, count: int) -> tuple[int, ...]:
    """``count`` evenly spread 0-based frame numbers, away from the clip ends (as A2D picks them)."""
    return tuple(int(round((k + 1) * frames / (count + 1))) for k in range(count))


def synthesize(
    output: str | Path,
    config: SynthConfig,
    overwrite: bool = False,
    progress: Callable[[int], None] | None = None,
) -> SynthSummary:
    """Write a dataset to ``output`` (``output/Release/...`` plus ``output/tags.csv``) under the
    output rule, atomically and holding the output's lock (:func:`vscr_cli.store.folder_output`):
    a second run into the same folder is refused while this one writes.

    ``progress`` is called with 1 after each video. Returns what was written.
    """
    with folder_output(Path(output), SYNTH, overwrite) as staging:
        return _write_dataset(staging, str(output), config, progress)


def _write_dataset(staging: Path, root: str, config: SynthConfig, progress: Callable[[int], None] | None) -> SynthSummary:
    """Write the dataset into the folder ``staging`` (to be moved to ``root``)."""
    release = staging / "Release"
    for sub in ("clips320H", "Annotations/mat", "Annotations/col"):
        (release / sub).mkdir(parents=True)
    rng = np.random.default_rng(config.seed)
    order = [config.classes[i] for i in rng.permutation(len(config.classes))]
    kinds = _assign_kinds(config, rng)
    test = set(rng.permutation(config.videos)[: int(round(config.test_fraction * config.videos))].tolist())
    summary = SynthSummary(root=root, config=asdict(config))
    rows: list[VideosetRow] = []
    tags: dict[str, tuple[int, ...]] = {}
    annotated = annotated_frames(config.frames, config.annotated)
    single_index = 0
    for index, kind in enumerate(kinds):
        video_rng = np.random.default_rng([config.seed, index])
        video_id = f"synth{index:04d}"
        video_labels = _video_labels(kind, single_index, order, video_rng)
        single_index += kind != "empty"
        actors = [_place(label, config, video_rng) for label in video_labels]
        frames, label_maps, instance_masks = zip(*_frames(actors, config, video_rng))
        _encode(release / "clips320H" / f"{video_id}.mp4", list(frames))
        found: set[int] = set()
        for folder in ("mat", "col"):
            (release / "Annotations" / folder / video_id).mkdir()
        for t in annotated:
            name = f"{t + 1:05d}"
            visible = [n for n in range(len(actors)) if instance_masks[t][n].any()]
            write_annotation(
                release / "Annotations" / "mat" / video_id / f"{name}.mat",
                label_maps[t],
                instance_masks[t][visible],
                np.array([actors[n].label for n in visible]),
            )
            cv2.imwrite(str(release / "Annotations" / "col" / video_id / f"{name}.png"), labels.colorize(label_maps[t])[..., ::-1])
            found.update(int(v) for v in np.unique(label_maps[t]) if v != labels.BACKGROUND)
        if config.dense:
            dense = release / "Annotations" / "dense" / video_id
            dense.mkdir(parents=True)
            for t, label_map in enumerate(label_maps):
                cv2.imwrite(str(dense / f"{t + 1:05d}.png"), label_map)
        split = 1 if index in test else 0
        video_tags = tuple(sorted(found))
        tags[video_id] = video_tags
        rows.append(
            VideosetRow(video_id, video_tags[0] if video_tags else 0, 0.0, config.frames / FPS, config.height, config.width, config.frames, len(annotated), split)
        )
        summary.videos.append(SynthVideo(video_id, video_tags, "test" if split else "train", kind, annotated))
        if progress is not None:
            progress(1)
    write_videoset(release / "videoset.csv", rows)
    write_tags_csv(staging / "tags.csv", tags)
    return summary


def _assign_kinds(config: SynthConfig, rng: np.random.Generator) -> list[str]:
    n_empty = int(round(config.empty_fraction * config.videos))
    n_multi = int(round(config.multi_fraction * config.videos))
    n_multi = min(n_multi, config.videos - n_empty)
    kinds = ["empty"] * n_empty + ["multi"] * n_multi + ["single"] * (config.videos - n_empty - n_multi)
    return [kinds[i] for i in rng.permutation(len(kinds))]
