"""Action alignment: every actor region of a segmentation takes a single action by majority vote.

A per-pixel segmentation often splits one actor between several actions (a dog half "running",
half "walking"). The paper's post-processing gives each actor region the action with the most
votes among its pixels. Here:

* an *actor region* is a connected component (8-connectivity by default) of the pixels of one
  actor, whatever their action; actor = ``id // 10`` for ids 10..79, so even invalid ids such
  as 31 (ball-climbing) belong to their actor's region. Other ids (background 0, ignore 255,
  and every id outside 10..79) are no actor and are never changed;
* each pixel votes for its own action (or, given class probabilities, spreads its vote over
  the actions of the region's actor: a soft vote);
* the region takes the *valid* action of its actor (one giving one of the 43 A2D ids) with
  the most votes; ties go to the lowest action number; a region without any vote for a valid
  action (all ball-climbing, say) becomes ``<actor>-none``;
* optionally (``track=True``) regions are linked across consecutive frames into tracks and
  the vote runs over the whole track, since an action spans time: a region in frame t links to
  the region of the same actor in frame t - 1 with the highest IoU, if that IoU is at least
  ``min_iou``. A region links to at most one earlier region, so tracks are trees rooted at
  their first region (a split continues the track in both parts; at a merge only the
  best-overlapping earlier region continues).

Alignment changes actions only, never actors, so the regions of its output equal those of its
input and aligning twice gives the same result as aligning once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from skimage.measure import label as connected_components

from vscr_cli import console
from vscr_cli.errors import StoreError
from vscr_cli.labels import CLASS_IDS, NUM_ACTIONS, NUM_ACTORS, VALID_IDS
from vscr_cli.schemas import LABEL, PREDICTIONS, PROB
from vscr_cli.store import Store, StoreWriter, open_store

#: Ids 10..79 belong to an actor (id // 10 = 1..7); a region's votes are indexed by id, 80 columns.
_FIRST_ACTOR_ID = 10
_END_ACTOR_ID = 10 * (NUM_ACTORS + 1)
_NONE_ACTION = NUM_ACTIONS  # "none" = 9; every actor has it

#: (256,) int: id -> actor number 1..7, 0 for pixels that belong to no actor.
_ACTOR_OF_ID = np.zeros(256, dtype=np.int64)
_ACTOR_OF_ID[_FIRST_ACTOR_ID:_END_ACTOR_ID] = np.arange(_FIRST_ACTOR_ID, _END_ACTOR_ID) // 10

#: (8, 10) bool: [actor, action] is one of the 43 valid ids.
_VALID_ACTION = np.zeros((NUM_ACTORS + 1, NUM_ACTIONS + 1), dtype=bool)
for _valid_id in VALID_IDS:
    _VALID_ACTION[divmod(_valid_id, 10)] = True


def align_actions(
    labels: np.ndarray,
    *,
    track: bool = False,
    min_iou: float = 0.3,
    prob: np.ndarray | None = None,
    connectivity: int = 2,
) -> np.ndarray:
    """Give every actor region (or track of regions) one action by majority vote.

    Args:
        labels: (T, H, W) uint8 A2D id maps of one video, frames in order.
        track: vote over tracks of regions linked across consecutive frames, not per frame.
        min_iou: smallest IoU that links a region to one of the same actor in the previous frame.
        prob: optional (T, 44, H, W) non-negative class scores (softmax probabilities) in
            :data:`~vscr_cli.labels.CLASS_IDS` order; each pixel then votes for every action
            of its region's actor with the score of that actor-action class.
        connectivity: 1 = 4-connected regions, 2 = 8-connected regions.

    Returns:
        (T, H, W) uint8 maps: actor pixels carry the (valid) id chosen for their region,
        every other pixel is copied from ``labels``.
    """
    if labels.ndim != 3 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a (T, H, W) uint8 array, got {labels.dtype} {labels.shape}")
    expected_prob_shape = (labels.shape[0], len(CLASS_IDS), *labels.shape[1:])
    if prob is not None and prob.shape != expected_prob_shape:
        raise ValueError(f"prob must have shape {expected_prob_shape} (T, classes, H, W), got {prob.shape}")
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must lie in (0, 1], got {min_iou}")

    actors = _ACTOR_OF_ID[labels]
    regions, region_actor = _actor_regions(actors, connectivity)
    aligned = labels.copy()
    if len(region_actor) == 1:  # no actor pixel at all
        return aligned

    votes = _region_votes(labels, regions, len(region_actor), prob)
    if track:  # every region votes for its track, then takes the track's action
        group = _tracks(regions, actors, min_iou)
        region_votes, votes = votes, np.zeros_like(votes)
        np.add.at(votes, group, region_votes)
        region_action = _winning_actions(votes, region_actor)[group]
    else:
        region_action = _winning_actions(votes, region_actor)

    inside = regions > 0
    region_ids = (10 * region_actor + region_action).astype(np.uint8)
    aligned[inside] = region_ids[regions[inside]]
    return aligned


def _actor_regions(actors: np.ndarray, connectivity: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, H, W) actor numbers -> (T, H, W) int64 region ids and (R + 1,) actor of each region.

    Region ids are numbered frame after frame from 1; 0 marks pixels of no actor.
    """
    regions = np.zeros(actors.shape, dtype=np.int64)
    offset = 0
    for frame, frame_actors in enumerate(actors):
        components, count = connected_components(
            frame_actors, background=0, connectivity=connectivity, return_num=True
        )
        regions[frame] = np.where(components > 0, components + offset, 0)
        offset += count
    region_actor = np.zeros(offset + 1, dtype=np.int64)
    region_actor[regions.ravel()] = actors.ravel()  # every pixel of a region has the region's actor
    return regions, region_actor


def _region_votes(
    labels: np.ndarray, regions: np.ndarray, num_regions: int, prob: np.ndarray | None
) -> np.ndarray:
    """(num_regions, 80) float64 votes of each region for each id 0..79.

    Hard votes count the region's pixels per id, so they only fall on the region's actor's ids.
    Soft votes sum each pixel's class scores over all 43 classes; the winner is then chosen
    among the region's actor's ids only (:func:`_winning_actions`).
    """
    inside = regions > 0
    region_of_pixel = regions[inside]
    if prob is None:
        pairs = region_of_pixel * _END_ACTOR_ID + labels[inside]
        counts = np.bincount(pairs, minlength=num_regions * _END_ACTOR_ID)
        return counts.reshape(num_regions, _END_ACTOR_ID).astype(np.float64)
    votes = np.zeros((num_regions, _END_ACTOR_ID), dtype=np.float64)
    for class_index, class_id in enumerate(CLASS_IDS[1:], start=1):
        class_scores = prob[:, class_index][inside]
        votes[:, class_id] = np.bincount(region_of_pixel, weights=class_scores, minlength=num_regions)
    return votes


def _tracks(regions: np.ndarray, actors: np.ndarray, min_iou: float) -> np.ndarray:
    """(R + 1,) track of every region (the id of the track's first region); links frame t to t - 1 by IoU."""
    num_regions = int(regions.max()) + 1
    area = np.bincount(regions.ravel(), minlength=num_regions)
    track = np.arange(num_regions)
    for frame in range(1, regions.shape[0]):
        current, previous = regions[frame], regions[frame - 1]
        overlap = (current > 0) & (previous > 0) & (actors[frame] == actors[frame - 1])
        pair_codes, intersection = np.unique(
            current[overlap] * num_regions + previous[overlap], return_counts=True
        )
        if not pair_codes.size:
            continue
        current_ids, previous_ids = np.divmod(pair_codes, num_regions)
        iou = intersection / (area[current_ids] + area[previous_ids] - intersection)
        # best previous region per current region: highest IoU, then the lowest previous id
        order = np.lexsort((previous_ids, -iou, current_ids))
        first = np.ones(order.size, dtype=bool)
        first[1:] = current_ids[order[1:]] != current_ids[order[:-1]]
        best = order[first]
        linked = best[iou[best] >= min_iou]
        track[current_ids[linked]] = track[previous_ids[linked]]
    return track


def _winning_actions(votes: np.ndarray, actor: np.ndarray) -> np.ndarray:
    """(G, 80) id votes and (G,) actors -> (G,) winning valid action (0 for groups without an actor)."""
    action_columns = 10 * actor[:, None] + np.arange(NUM_ACTIONS + 1)[None, :]
    action_votes = np.take_along_axis(votes, action_columns, axis=1)  # (G, 10)
    valid = _VALID_ACTION[actor]
    action_votes[~valid] = -np.inf
    winner = np.argmax(action_votes, axis=1)  # first maximum = lowest action number
    without_votes = np.max(action_votes, axis=1) <= 0.0
    winner[without_votes & (actor > 0)] = _NONE_ACTION
    winner[actor == 0] = 0
    return winner


def align_video(store: Store, video: str, writer: StoreWriter, options: dict[str, Any], on_frames: Callable[[int], None]) -> None:
    """Write one video of ``store`` to ``writer`` with aligned ``label``; every other array is copied unchanged.

    Without tracking each frame is aligned on its own, streaming frame by frame; with
    tracking the whole (T, H, W) video (and (T, 44, H, W) ``prob`` when voting softly) is read.
    """
    names = store.arrays(video)
    if LABEL not in names:
        raise StoreError(f"{store.location}: video {video!r} has no {LABEL!r} array")
    if options["use_prob"] and PROB not in names:
        raise StoreError(f"{store.location}: video {video!r} has no {PROB!r} array (drop --use-prob)")
    arrays = {name: store.array(video, name) for name in names}
    PREDICTIONS.check(store.location, video, LABEL, arrays[LABEL])
    frame_index = store.frame_index(video)
    output = writer.video(
        video, frame_index, {name: (array.shape[1:], array.dtype) for name, array in arrays.items()}, store.video_attrs(video)
    )
    frames = len(frame_index)
    step = max(frames, 1) if options["track"] else 1
    for start in range(0, frames, step):
        window = slice(start, start + step)
        prob = np.asarray(arrays[PROB][window]) if options["use_prob"] else None
        aligned = align_actions(
            np.asarray(arrays[LABEL][window]),
            track=options["track"],
            min_iou=options["min_iou"],
            prob=prob,
            connectivity=1 if options["connectivity"] == 4 else 2,
        )
        output.write(LABEL, start, aligned)
        for name in names:
            if name != LABEL:
                output.write(name, start, np.asarray(arrays[name][window]))
        on_frames(len(aligned))
    writer.complete(video)


def run(pred: str, output: Path | None, track: bool = False, min_iou: float = 0.3, connectivity: int = 8, use_prob: bool = False, overwrite: bool = False, resume: bool = False) -> None:
    """``vscr align``: the pred store ``pred`` (``-``: zip bytes on stdin) with every actor region
    aligned, into ``output`` (None: zip bytes on stdout); other arrays are copied."""
    options = {"track": track, "min_iou": min_iou, "connectivity": connectivity, "use_prob": use_prob}
    with open_store(pred, PREDICTIONS.kind) as store:
        inputs = {"pred": {"location": store.location, "params": store.record.params, "inputs": store.record.inputs}}
        with StoreWriter(output, kind=PREDICTIONS.kind, params={"aligned": options}, inputs=inputs, overwrite=overwrite, resume=resume) as writer:
            writer.check_resumed({video: (store.location, functools.partial(store.footage, video)) for video in store.videos})
            for skipped in store.record.skipped:
                if skipped not in writer.record.skipped:
                    writer.skip(skipped["video"], skipped["reason"])
            videos = [video for video in store.videos if video not in writer.completed]
            if len(videos) < len(store.videos):
                console.log.info("resuming: %d of %d videos already aligned", len(store.videos) - len(videos), len(store.videos))
            with console.progress() as bar:
                task = bar.add_task("aligning", total=sum(len(store.frame_index(video)) for video in videos))
                for video in videos:
                    bar.update(task, description=f"aligning {video}")
                    align_video(store, video, writer, options, lambda n: bar.advance(task, n))
