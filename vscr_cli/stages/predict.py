"""Prediction stage: full-frame inference of a trained VSCR model, with the motion clip around each frame.

Labels are written at the model's training height unless told otherwise (A2D: the full
320-pixel frame, as the paper tests); the network and the motion clip see the frames at
``scale`` (:data:`DEFAULT_SCALE`) times that height, or times the model's working height where it
trained on fewer rows (``crop_share``: the labels are then upsampled to the frame), the clip around each frame is built as in training
(optical flow for the flow encoder, a Kinetics-normalised RGB clip for I3D), and the class
logits are upsampled bilinearly to the output frame before the decision (:func:`decide`),
made among background and the video's classes: its tags when given, else decided once from all
its frames: the actors the class probabilities pooled over the video show, each with the actions
the network's action head reads off that actor's motion (:func:`two_stream_classes`; ``pooled``:
the classes the pooled probabilities show, :func:`video_classes`). The flow of each frame pair is computed once per
video and shared by the overlapping clips (with clips of 5 frames 2 apart, dense prediction used
to compute every pair four times); pairs no later clip needs are dropped after each batch.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from vscr_cli import console, labels
from vscr_cli.checkpoints import load_bank
from vscr_cli.core.crf import DenseCRFParams, dense_crf
from vscr_cli.core.flow import PairFlows
from vscr_cli.core.models.folding import folded
from vscr_cli.core.models.motion import MOTION_ENCODERS, clip_frames
from vscr_cli.core.models.vscr import VSCRNet, VSCROutput, upsample
from vscr_cli.core.precision import autocast, dtype_name
from vscr_cli.core.readout import PrototypeBank, class_votes, knn_votes
from vscr_cli.core.temporal import consistent, flow_to_cells, fused, neighbours, temporal_frames
from vscr_cli.datasets import load_tags
from vscr_cli.errors import VscrError
from vscr_cli.model_folders import load_model, model_sha256
from vscr_cli.sources import discover
from vscr_cli.settings.run import Runtime
from vscr_cli.stages.runner import RunReport, VideoResult, VideoTask, per_process, write_per_video
from vscr_cli.stages.workers import start_on_workers
from vscr_cli import schemas
from vscr_cli.schemas import LABEL, PROB
from vscr_cli.settings.model import ModelConfig
from vscr_cli.settings.predict import (
    DEFAULT_DECISION,
    PredictParams,
)
from vscr_cli.tags import require_tags
from vscr_cli.video import FrameSelection, VideoSource, resize_to_height, shrunk_to_height, size_at_height

CLASS_IDS = np.array(labels.CLASS_IDS, dtype=np.uint8)
#: (43,) int64: the actor (0-6) and the action (0-8) of each actor-action class index 1-43.
CLASS_ACTOR = torch.tensor([labels.actor_of(class_id) - 1 for class_id in labels.VALID_IDS])
CLASS_ACTION = torch.tensor([labels.action_of(class_id) - 1 for class_id in labels.VALID_IDS])
#: Floor of a k-NN vote fraction when it stands in for a probability (log-space decoding).
VOTE_FLOOR = 1e-3
SCHEMA = schemas.PREDICTIONS


@dataclass
class Predictor:
    """A model on a device: frames (+ clips) -> network outputs at its stride."""

    model: VSCRNet
    config: ModelConfig
    mean: np.ndarray  # (3,) in 0..255 units
    std: np.ndarray
    device: torch.device
    dtype: torch.dtype | None
    frame_height: int | None = None  # the height it was trained at
    bank: PrototypeBank | None = None  # labelled training prototypes (vscr refine), for the k-NN readout
    fold_norms: bool = False  # fold the batch norms into the convolutions at the first call (vscr predict; not vscr refine, which retrains and saves the model)

    @torch.inference_mode()
    def outputs(self, frames: np.ndarray, motion: np.ndarray | None, flip: bool = False) -> VSCROutput:
        """frames (B, H, W, 3) uint8, motion (B, ...) or None -> embedding (B, D, h, w) and logits
        (B, 44, h, w), float32 at the network's stride. With ``flip`` the outputs are averaged with
        those of the mirrored frames and clips, mirrored back (:func:`flip_averaged`; SPML's flipped
        inference). With ``fold_norms`` the first call folds the
        network's batch norms into its convolutions (:func:`~vscr_cli.core.models.folding.folded`,
        probed on its first frame; ordinary tensors, made outside inference mode) and puts it in
        channels-last memory format, as the frames: oneDNN's faster layout on CPUs."""
        images = torch.from_numpy((frames.astype(np.float32) - self.mean) / self.std).permute(0, 3, 1, 2).to(self.device)  # channels-last strides
        motion_tensor = torch.from_numpy(motion).to(self.device) if motion is not None else None
        if self.fold_norms:
            first_motion = motion_tensor[:1] if motion_tensor is not None else None
            with torch.inference_mode(False):
                self.model, self.fold_norms = folded(self.model, lambda network: network(images[:1], first_motion).logits), False
                self.model = self.model.to(memory_format=torch.channels_last)
        if motion_tensor is not None and motion_tensor.dim() == 4:
            motion_tensor = motion_tensor.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.dtype):
            output = self.model(images, motion_tensor)
            if flip:
                mirrored_motion = MOTION_ENCODERS[self.config.motion].mirror(motion_tensor) if motion_tensor is not None else None
                output = flip_averaged(output, self.model(images.flip(-1), mirrored_motion))
        return VSCROutput(output.embedding.float(), output.logits.float(), output.actions)

    def logits(self, output: VSCROutput, readout: str, votes_for: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 44, h, w) class scores of ``output`` that :func:`start_decoding` takes as logits: the
        softmax head's, or (``knn``) the log of the bank's vote fractions. With ``votes_for`` (44,)
        (:func:`tag_votes`) the probability of each class c counts for class ``votes_for[c]`` (not
        at all where -1): the head's softmax is summed accordingly, a prototype votes accordingly."""
        if readout == "softmax":  # votes that keep classes for themselves are start_decoding's own restriction
            own = votes_for is None or bool((votes_for[votes_for >= 0] == (votes_for >= 0).nonzero().flatten()).all())
            return output.logits if own else fold_probabilities(output.logits, votes_for)
        if self.bank is None:
            raise VscrError("this model has no prototype bank: make one with vscr refine, or use --readout softmax")
        votes = knn_votes(output.embedding, self.bank, labels.NUM_CLASSES, votes_for=votes_for)
        return votes.clamp_min(VOTE_FLOOR).log()


def flip_averaged(output: VSCROutput, mirrored: VSCROutput) -> VSCROutput:
    """The outputs of frames and of their mirror images (each (B, C, h, w)) -> their mean, the
    mirrored ones flipped back first; the embedding's mean is L2-normalised again."""
    actions = None if output.actions is None else (output.actions.float() + mirrored.actions.float().flip(-1)) / 2
    embedding = torch.nn.functional.normalize(output.embedding.float() + mirrored.embedding.float().flip(-1), dim=1)
    return VSCROutput(embedding, (output.logits.float() + mirrored.logits.float().flip(-1)) / 2, actions)


def load_predictor(folder: Path, model_sha256: str, device: torch.device, dtype: torch.dtype | None, fold_norms: bool = False) -> Predictor:
    """The model saved in ``folder`` by vscr train or vscr refine (the sha256 only keys per-process
    caches of predictors); ``fold_norms``: :attr:`Predictor.fold_norms`, for inference only."""
    network, config, record = load_model(folder, device)
    mean, std = (np.array(record["preprocessing"][key], np.float32) * 255 for key in ("mean", "std"))
    return Predictor(network, config, mean, std, device, dtype, record.get("frame_height"), load_bank(folder), fold_norms)


@dataclass
class NetworkBatch:
    """One batch of :func:`network_outputs`: the network's outputs on frames ``numbers`` of a video."""

    numbers: Sequence[int]
    output: VSCROutput
    size: tuple[int, int]  # (H, W) of the output frame
    images: np.ndarray  # (B, H', W', 3) uint8: the frames as the network saw them at ``scale`` (H' = scale x H)


def log_of(prob: torch.Tensor) -> torch.Tensor:
    """Probabilities -> their log, zeros at the dtype's smallest normal number (logits the decoding's softmax reads back)."""
    return prob.clamp_min(torch.finfo(prob.dtype).tiny).log()


def scales_averaged(outputs: Sequence[VSCROutput]) -> VSCROutput:
    """The network's outputs on the same frames at several scales (each (B, C, h_s, w_s)) -> their
    mean on the finest grid (B, C, h, w): the class probabilities averaged (SPML's multi-scale
    inference) and returned as their log, the action logits averaged, the embedding's mean
    L2-normalised again. One output comes back as it is."""
    if len(outputs) == 1:
        return outputs[0]
    size = max((tuple(output.logits.shape[-2:]) for output in outputs), key=lambda hw: hw[0] * hw[1])
    prob = torch.stack([upsample(output.logits.float(), size).softmax(dim=1) for output in outputs]).mean(dim=0)
    embedding = torch.nn.functional.normalize(sum(upsample(output.embedding.float(), size) for output in outputs), dim=1)
    actions = None if outputs[0].actions is None else sum(upsample(output.actions.float(), size) for output in outputs) / len(outputs)
    return VSCROutput(embedding, log_of(prob), actions)


def network_outputs(
    video: VideoSource,
    indices: Sequence[int],
    height: int | None,
    predictor: Predictor,
    batch_size: int,
    scale: float = 1.0,
    flip: bool = False,
    multi_scale: Sequence[float] = (1.0,),
) -> Iterator[NetworkBatch]:
    """The network on frames ``indices`` of ``video``, batch by batch, with the output frame size
    (H, W) at ``height``. The network and the motion clip see the frames at ``scale`` times the
    model's working height for H (:meth:`ModelConfig.working_height`: H itself unless the model
    trained at fewer rows), and with ``flip`` their mirror images too (:meth:`Predictor.outputs`).
    With ``multi_scale`` other than (1,) they see them at each of those multiples of that height,
    the flow computed at each, and the outputs are averaged (:func:`scales_averaged`). The frames are
    read as the batches reach them, the flow of each frame pair is computed once per scale and shared
    by the overlapping clips, and frames and pairs no later clip uses are dropped after each batch:
    the frames held do not grow with the video's length."""
    config = predictor.config
    total = video.count_frames()
    clips = {i: clip_frames(i, total, config.clip_length, config.clip_stride) for i in indices}
    reads = clips if config.motion != "none" else {i: [i] for i in indices}  # the frames each frame's input is made of, in order
    needed = sorted({f for frames in reads.values() for f in frames})
    ratios = (1.0, *multi_scale)  # the frames at ``scale`` itself are the batch's images
    reader = iter(video.read(needed))  # in increasing order, read as the batches need them
    source: dict[int, np.ndarray] = {}  # the frames this batch and later ones need, each once, at the largest scale's rows
    size, working = (0, 0), 0

    def read_through(last: int) -> None:
        """Read the frames up to ``last`` into ``source``."""
        nonlocal size, working
        while last not in source:
            number, frame = next(reader)
            size = size_at_height(frame.shape[:2], height)
            working = config.working_height(size[0])
            source[number] = resize_to_height(frame, round(working * scale * max(ratios)))

    def at(ratio: float, number: int) -> np.ndarray:
        """Frame ``number`` as the network reads it at ``ratio`` times ``scale``."""
        return resize_to_height(source[number], round(working * scale * ratio))

    flows = {ratio: PairFlows(functools.partial(at, ratio)) for ratio in multi_scale}
    for start in range(0, len(indices), batch_size):
        chunk = indices[start : start + batch_size]
        read_through(max(reads[i][-1] for i in chunk))
        images = np.stack([at(1.0, i) for i in chunk])
        first_needed = min((reads[i][0] for i in indices[start + batch_size :]), default=total)  # by any later batch
        outputs = []
        for ratio in multi_scale:
            frames = images if ratio == 1.0 else np.stack([at(ratio, i) for i in chunk])
            motion = None
            if config.motion == "flow":
                motion = np.stack([flows[ratio].stack(clips[i]) for i in chunk])
                flows[ratio].forget(first_needed)
            elif config.motion in MOTION_ENCODERS:
                motion = np.stack([MOTION_ENCODERS[config.motion].clip_input([at(ratio, f) for f in clips[i]]) for i in chunk])
            outputs.append(predictor.outputs(frames, motion, flip))
        for number in [number for number in source if number < first_needed]:
            del source[number]
        yield NetworkBatch(chunk, scales_averaged(outputs), size, images)


def temporally_fused(batches: Iterable[NetworkBatch], selected: Sequence[int], window: int, run_on: Sequence[int]) -> Iterator[NetworkBatch]:
    """:func:`network_outputs` on the frames ``run_on`` (:func:`~vscr_cli.core.temporal.temporal_frames` of
    ``selected``) -> batches of the ``selected`` frames only, each frame's class logits replaced by
    the log of its probabilities fused with those of its neighbours up to ``window`` frames away
    (:func:`~vscr_cli.core.temporal.fused`; Farneback flow from the frame to each neighbour and
    back, on the frames as the network saw them, each pair computed once); the embedding and action
    logits stay the frame's own. A frame leaves once its last neighbour has been seen, and what no
    later frame needs is dropped."""
    available, pending = set(run_on), deque(sorted(set(selected)))
    kept: dict[int, tuple[torch.Tensor, np.ndarray, VSCROutput, int]] = {}  # frame -> (44, h, w) probabilities, its frame, its batch's outputs and place in them
    flows = PairFlows(lambda number: kept[number][1])
    seen = -1
    for batch in batches:
        prob = batch.output.logits.softmax(dim=1)
        for k, number in enumerate(batch.numbers):
            kept[number], seen = (prob[k], batch.images[k], batch.output, k), number
        ready = []  # frames leave in order: the first pending frame's neighbours are seen before a later one's
        while pending and max(pending[0], *neighbours(pending[0], window, available)) <= seen:
            ready.append(pending.popleft())
        if not ready:
            continue
        logits = []
        for t in ready:
            centre = kept[t][0]
            others = []
            for n in neighbours(t, window, available):
                forward = flows.pair(t, n)
                others.append((kept[n][0], *flow_to_cells(forward, consistent(forward, flows.pair(n, t)), tuple(centre.shape[-2:]))))
            logits.append(log_of(fused(centre, others)))
        own = [kept[t][2:] for t in ready]
        actions = None if batch.output.actions is None else torch.stack([output.actions[k] for output, k in own])
        embedding = torch.stack([output.embedding[k] for output, k in own])
        yield NetworkBatch(ready, VSCROutput(embedding, torch.stack(logits), actions), batch.size, np.stack([kept[t][1] for t in ready]))
        first_needed = min((t - window for t in pending), default=seen + 1)
        kept = {number: value for number, value in kept.items() if number >= first_needed}
        flows.forget(first_needed)


def decide(prob: torch.Tensor, rule: str = DEFAULT_DECISION) -> torch.Tensor:
    """(B, C, H, W) probabilities (class 0 background) -> (B, H, W) class indices. ``foreground``:
    foreground where the other classes together outweigh background, then the most probable of
    them; ``argmax``: the most probable class (the paper's softmax).

    A plain arg-max lets background win wherever the foreground mass is spread over several
    actor-action classes (typically the actions of one actor), which weak labels make common.
    """
    if rule == "argmax":
        return prob.argmax(1)
    foreground = prob[:, 1:].sum(1) > prob[:, 0]
    return torch.where(foreground, prob[:, 1:].argmax(1) + 1, 0)


#: A class enters a video's decision when its pooled probability is at least this share of the top class's.
VIDEO_CLASS_SHARE = 0.5


def allowed_classes(tags: Iterable[int]) -> torch.Tensor:
    """(44,) bool: background and the A2D ids ``tags``."""
    allowed = torch.zeros(labels.NUM_CLASSES, dtype=torch.bool)
    allowed[0] = True
    allowed[[int(labels.CLASS_INDEX[tag]) for tag in tags]] = True
    return allowed


def tag_votes(tags: Iterable[int], votes: str) -> torch.Tensor:
    """(44,) int64: the class whose evidence each class's counts as in a video tagged with the A2D ids
    ``tags`` (-1: none). ``class``: background and the tags, each for itself. ``actor``: besides,
    every other class of a tagged actor, for that actor's tag when exactly one tag names the actor
    (the tag says the action, the network finds the actor)."""
    tags = sorted(set(tags))
    votes_for = class_votes(allowed_classes(tags))
    if votes == "actor":
        for index, class_id in enumerate(labels.CLASS_IDS[1:], start=1):
            same_actor = [tag for tag in tags if labels.actor_of(tag) == labels.actor_of(class_id)]
            if votes_for[index] < 0 and len(same_actor) == 1:
                votes_for[index] = int(labels.CLASS_INDEX[same_actor[0]])
    return votes_for


def fold_probabilities(logits: torch.Tensor, votes_for: torch.Tensor) -> torch.Tensor:
    """(B, 44, h, w) logits -> (B, 44, h, w) log-probabilities where class k holds the softmax
    probability of every class c with ``votes_for[c] == k`` (-1: dropped; classes nothing counts
    for get log 0). With ``votes_for`` the identity on the allowed classes, softmax over them is
    the restricted softmax of ``logits``."""
    prob = logits.softmax(dim=1)
    keep = (votes_for >= 0).to(prob.device)
    summed = torch.zeros_like(prob).index_add_(1, votes_for.to(prob.device)[keep], prob[:, keep])
    return log_of(summed)


def class_pool(logits: torch.Tensor) -> torch.Tensor:
    """(B, 44, h, w) logits -> (44,) their softmax summed over the batch and the network's cells (the
    frame's upsampling adds nothing to a sum): a video's pool is the sum over its batches."""
    return logits.softmax(dim=1).sum(dim=(0, 2, 3)).cpu()


def actor_action_pool(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """(B, 44, h, w) class logits and (B, 9, h, w) action logits -> (7, 10): per actor, its softmax mass
    summed over the batch's cells (column 0) and the action logits summed with that mass as weights
    (columns 1-9); a video's pool is the sum over its batches."""
    prob = logits.softmax(dim=1)
    actor_mass = torch.zeros(prob.shape[0], labels.NUM_ACTORS, *prob.shape[2:], device=prob.device)
    actor_mass.index_add_(1, CLASS_ACTOR.to(prob.device), prob[:, 1:])
    weighted = torch.einsum("bahw,bxhw->ax", actor_mass, actions.to(prob.dtype))
    return torch.cat([actor_mass.sum(dim=(0, 2, 3))[:, None], weighted], dim=1).cpu()


def two_stream_classes(pooled: torch.Tensor, actor_actions: torch.Tensor) -> torch.Tensor:
    """(44,) pooled class probabilities and the (7, 10) :func:`actor_action_pool` of one video -> (44,)
    bool: background and, for each actor whose pooled mass is at least ``VIDEO_CLASS_SHARE`` of the
    top actor's, the A2D classes of its actions whose probability (the sigmoid of the action logits
    averaged with the actor's mass as weights) is at least that share of its most probable one's.
    The actor branch says who, the action branch what."""
    actor_mass = torch.zeros(labels.NUM_ACTORS).index_add_(0, CLASS_ACTOR, pooled[1:].float())
    allowed = torch.zeros(labels.NUM_CLASSES, dtype=torch.bool)
    allowed[0] = True
    for actor in (actor_mass >= VIDEO_CLASS_SHARE * actor_mass.max()).nonzero().flatten().tolist():
        classes = (CLASS_ACTOR == actor).nonzero().flatten()  # its A2D classes, 0-42
        action_prob = (actor_actions[actor, 1:] / actor_actions[actor, 0].clamp_min(1e-12)).sigmoid()[CLASS_ACTION[classes]]
        allowed[1 + classes[action_prob >= VIDEO_CLASS_SHARE * action_prob.max()]] = True
    return allowed


def video_classes(pooled: torch.Tensor) -> torch.Tensor:
    """(44,) class probabilities summed over all frames of one video and the network's cells -> (44,) bool:
    background and the actor-action classes the video shows, decided once for the video: those
    whose pooled probability is at least ``VIDEO_CLASS_SHARE`` of the most probable class's."""
    allowed = torch.ones(labels.NUM_CLASSES, dtype=torch.bool)
    allowed[1:] = pooled[1:] >= VIDEO_CLASS_SHARE * pooled[1:].max()
    return allowed


def start_decoding(
    logits: torch.Tensor,
    allowed: torch.Tensor,
    size: tuple[int, int],
    keep_prob: bool,
    images: np.ndarray | None = None,
    crf: DenseCRFParams | None = None,
    rule: str = DEFAULT_DECISION,
    crf_height: int | None = None,
) -> Callable[[], tuple[np.ndarray, torch.Tensor | None]]:
    """(B, 44, h, w) logits -> a call that returns (B, H, W) uint8 A2D ids decided among the
    ``allowed`` (44,) classes, and with ``keep_prob`` their (B, 44, H, W) float16 probabilities (0
    outside ``allowed``). Any dense CRF is started here on the worker processes and waited for by
    the call, so the network can run its next batch meanwhile.

    The softmax over the allowed classes is the softmax over all 44 renormalised to them, so only
    the allowed classes (usually background and one or two more) are upsampled to the frame. With
    ``crf`` the probabilities are the dense CRF's marginals on ``images`` (B, H', W', 3) uint8, the
    frames at the network's scale, run at ``crf_height`` rows where that is fewer (:func:`start_crf`).
    ``rule``: :func:`decide`'s.
    """
    classes = allowed.nonzero().flatten().to(logits.device)  # background first
    prob = upsample(logits[:, classes], size).softmax(dim=1)
    refined: Callable[[], torch.Tensor] = lambda: prob  # noqa: E731
    if crf is not None and len(classes) > 1:
        if images is None:
            raise ValueError("the dense CRF needs the frames")
        refined = start_crf(prob, images, crf, crf_height)

    def finish() -> tuple[np.ndarray, torch.Tensor | None]:
        final = refined()
        decided = decide(final, rule) if len(classes) > 1 else torch.zeros(final.shape[0], *size, dtype=torch.long, device=final.device)  # a video tagged with no actor
        label = CLASS_IDS[classes[decided].cpu().numpy()]
        if not keep_prob:
            return label, None
        full = final.new_zeros(final.shape[0], labels.NUM_CLASSES, *size, dtype=torch.float16)
        full[:, classes] = final.half()
        return label, full.cpu()

    return finish


def start_crf(prob: torch.Tensor, images: np.ndarray, params: DenseCRFParams, height: int | None = None) -> Callable[[], torch.Tensor]:
    """(B, C, H, W) probabilities -> a call that returns the dense CRF's (B, C, H, W) marginals on
    ``images`` (B, H', W', 3) uint8 (the same frames at any scale), started frame by frame on the
    worker processes; run at (H, W), or with ``height`` below H at that many rows
    (:func:`~vscr_cli.core.crf.dense_crf`'s ``work``): the mean field's cost grows with the pixels."""
    work = shrunk_to_height(tuple(prob.shape[-2:]), height)
    pending = start_on_workers(functools.partial(dense_crf, params=params, work=work), images, prob.cpu().numpy())
    return lambda: torch.from_numpy(np.stack(pending())).to(prob.device)


def video_predictions(
    video: VideoSource,
    params: PredictParams,
    predictor: Predictor,
    batch_size: int,
    on_frames: Callable[[int], None] | None = None,
    tags: Mapping[str, tuple[int, ...]] | None = None,
) -> VideoResult:
    """``label`` (T, H, W) uint8 A2D ids (and ``prob`` (T, 44, H, W) float16 when ``keep_prob``).

    With ``tags`` (A2D ids per video) pixels are decoded among background and the video's tags,
    each tag holding the probability of the classes ``params.tag_votes`` gives it (:func:`tag_votes`);
    without, ``params.decode="video"`` first decides the video's classes from all its frames
    (:func:`two_stream_classes` when ``params.video_decision`` is ``two-stream`` and the model has an
    action head, its classes then counting like tags, else :func:`video_classes`), ``"frame"`` decodes each frame among all 44 classes. ``prob`` is the
    restricted distribution.
    """
    selection = FrameSelection(**params.selection)
    indices = video.select(selection)
    allowed = allowed_classes(tags[video.video_id]) if tags is not None else None
    votes_for = tag_votes(tags[video.video_id], params.tag_votes) if tags is not None else None
    if allowed is None and params.decode == "frame":
        allowed = torch.ones(labels.NUM_CLASSES, dtype=torch.bool)
    crf = DenseCRFParams() if params.crf else None
    held: list[tuple[VSCROutput, torch.Tensor, np.ndarray]] = []  # outputs, (B, 44, h, w) logits and frames per batch while the video's classes are not known
    decoded: list[tuple[np.ndarray, torch.Tensor | None]] = []  # (B, H, W) labels, (B, 44, H, W) float16 probabilities
    started: deque[tuple[Callable[[], tuple[np.ndarray, torch.Tensor | None]], int]] = deque()  # decodings under way, each with the frames it counts for

    def collect(keep: int) -> None:
        """Waits for the oldest decodings until ``keep`` are left (the CRF of one batch runs while the network does the next)."""
        while len(started) > keep:
            finish, frames = started.popleft()
            decoded.append(finish())
            if on_frames is not None and frames:
                on_frames(frames)

    pooled = torch.zeros(labels.NUM_CLASSES)
    actor_actions: torch.Tensor | None = None  # (7, 10) actor_action_pool of the batches so far (two-stream only)
    size = (0, 0)
    run_on = temporal_frames(indices, params.temporal, video.count_frames()) if params.temporal else indices
    batches: Iterable[NetworkBatch] = network_outputs(video, run_on, selection.height, predictor, batch_size, params.scale, params.flip, params.multi_scale)
    if params.temporal:
        batches = temporally_fused(batches, indices, params.temporal, run_on)
    predicted: list[int] = []  # the frames the batches hold, in order: the store records them as ``indices``
    for batch in batches:
        predicted.extend(batch.numbers)
        logits, size = predictor.logits(batch.output, params.readout, votes_for), batch.size
        if allowed is None:  # the video's classes need all its frames first
            pooled += class_pool(logits)
            if params.video_decision == "two-stream" and batch.output.actions is not None:
                actor_actions = actor_action_pool(logits, batch.output.actions) + (0 if actor_actions is None else actor_actions)
            held.append((batch.output, logits, batch.images))
            if on_frames is not None and crf is None:  # without the CRF the held batch's decoding is the quick part
                on_frames(len(batch.numbers))
        else:
            started.append((start_decoding(logits, allowed, size, params.prob, batch.images, crf, params.decision, params.crf_height), len(batch.numbers)))
            collect(keep=1)
    if held:
        decided_votes = None  # the two-stream decision's classes count like tags (params.tag_votes)
        if actor_actions is None:
            allowed = video_classes(pooled)
        else:
            allowed = two_stream_classes(pooled, actor_actions)
            decided_votes = tag_votes(CLASS_IDS[allowed.numpy()][1:].tolist(), params.tag_votes)
        for output, logits, images in held:
            if decided_votes is not None:
                logits = predictor.logits(output, params.readout, decided_votes)
            started.append((start_decoding(logits, allowed, size, params.prob, images, crf, params.decision, params.crf_height), len(logits) if crf is not None else 0))
            collect(keep=1)
    collect(keep=0)
    if predicted != list(indices):
        raise RuntimeError(f"{video.video_id}: the network's outputs are for frames other than the selected ones")
    arrays = {LABEL: np.concatenate([label for label, _ in decoded])}
    if params.prob:
        arrays[PROB] = torch.cat([prob for _, prob in decoded]).numpy()
    return VideoResult(indices, arrays)


def run(
    sources: Sequence[str],
    output: Path | None,
    model: Path,
    runtime: Runtime,
    selection: FrameSelection = FrameSelection(),
    split: str = "all",
    tags: str | None = None,
    params: PredictParams = PredictParams(),
    batch_size: int = 4,
) -> RunReport:
    """``vscr predict``: the pred store of ``sources`` at ``output`` (None: zip bytes on stdout) by
    the model in ``model``, decoded as ``params`` say (:class:`PredictParams`; ``decode="tags"``
    exactly when ``tags`` are given; the model's digest, the frames and the precision are filled in
    here); labels at ``selection.height``, else at the model's training height."""
    device, dtype, options = runtime.device, runtime.dtype, runtime.options
    console.log.info("model: %s", model)
    sha256 = model_sha256(model)
    factory_args = (model, sha256, device, dtype, True)  # the batch norms folded: inference only
    predictor = per_process(load_predictor, *factory_args)  # a damaged model fails before any work
    if selection.height is None:
        selection = replace(selection, height=predictor.frame_height)
    videos = discover(sources, a2d_split=split)
    video_tags = require_tags([v.video_id for v in videos], load_tags(tags), tags) if tags else None
    params.validate()
    if (params.decode == "tags") != bool(tags):
        raise VscrError("decode 'tags' needs --tags, and --tags decodes among them" if tags is None else f"--tags: decoded among the tags, not by {params.decode!r}")
    params = replace(params, model_sha256=sha256, selection=selection.to_json(), precision=dtype_name(dtype))
    inputs = {"sources": [str(s) for s in sources], "split": split, "model": str(model), "tags": tags}
    compute = VideoTask(video_predictions, "predictor", load_predictor, factory_args, {"params": params, "batch_size": batch_size, "tags": video_tags})
    return write_per_video(output, SCHEMA.kind, params.to_json(), inputs, videos, selection, compute, options)
