"""Tests of action alignment (vscr_cli.stages.align)."""

from __future__ import annotations

import numpy as np
import pytest

from vscr_cli.labels import CLASS_IDS, VALID_IDS
from vscr_cli.stages.align import align_actions

DOG_RUNNING, DOG_WALKING, ADULT_WALKING = 77, 78, 18
BALL_CLIMBING, BALL_JUMPING, BALL_NONE = 31, 35, 39


def blob(frame: np.ndarray, rows: slice, cols: slice, majority: int, minority: int, share: float) -> None:
    """Fill a rectangle with ``majority``, then its first ``share`` of pixels with ``minority``."""
    frame[rows, cols] = majority
    block = frame[rows, cols]
    flat = block.reshape(-1)
    flat[: round(share * flat.size)] = minority
    frame[rows, cols] = flat.reshape(block.shape)


def test_region_takes_its_majority_action() -> None:
    labels = np.zeros((1, 8, 8), np.uint8)
    blob(labels[0], slice(2, 6), slice(1, 6), DOG_RUNNING, DOG_WALKING, 0.4)  # 60% running
    aligned = align_actions(labels)
    assert set(np.unique(aligned[0, 2:6, 1:6])) == {DOG_RUNNING}
    assert aligned.dtype == np.uint8 and aligned.shape == labels.shape


def test_background_and_non_actor_ids_are_untouched() -> None:
    labels = np.zeros((1, 8, 8), np.uint8)
    blob(labels[0], slice(2, 6), slice(1, 6), DOG_RUNNING, DOG_WALKING, 0.4)
    labels[0, 0, :] = 255
    labels[0, 7, :3] = (5, 80, 200)  # no actor: id // 10 outside 1..7
    aligned = align_actions(labels)
    outside = np.ones(labels.shape, bool)
    outside[0, 2:6, 1:6] = False
    assert np.array_equal(aligned[outside], labels[outside])


def test_separate_components_of_one_actor_vote_independently() -> None:
    labels = np.zeros((1, 6, 12), np.uint8)
    blob(labels[0], slice(1, 5), slice(0, 5), DOG_RUNNING, DOG_WALKING, 0.3)
    blob(labels[0], slice(1, 5), slice(7, 12), DOG_WALKING, DOG_RUNNING, 0.3)
    aligned = align_actions(labels)[0]
    assert set(np.unique(aligned[1:5, 0:5])) == {DOG_RUNNING}
    assert set(np.unique(aligned[1:5, 7:12])) == {DOG_WALKING}


def test_connectivity_decides_whether_diagonal_pixels_join() -> None:
    labels = np.zeros((1, 4, 4), np.uint8)
    labels[0, 0, 0] = labels[0, 1, 1] = DOG_RUNNING
    labels[0, 2, 2] = DOG_WALKING  # diagonal neighbour of (1, 1)
    assert set(np.unique(align_actions(labels)[0])) == {0, DOG_RUNNING}  # one 8-connected region
    assert np.array_equal(align_actions(labels, connectivity=1), labels)  # three 4-connected regions


def test_adjacent_actors_stay_separate() -> None:
    labels = np.zeros((1, 6, 10), np.uint8)
    labels[0, 1:5, 0:4] = ADULT_WALKING
    blob(labels[0], slice(1, 5), slice(4, 10), DOG_WALKING, DOG_RUNNING, 0.6)  # touches the adult
    aligned = align_actions(labels)[0]
    assert set(np.unique(aligned[1:5, 0:4])) == {ADULT_WALKING}
    assert set(np.unique(aligned[1:5, 4:10])) == {DOG_RUNNING}


def test_tie_goes_to_the_lowest_action_number() -> None:
    labels = np.zeros((1, 4, 4), np.uint8)
    blob(labels[0], slice(0, 2), slice(0, 4), DOG_WALKING, DOG_RUNNING, 0.5)
    assert set(np.unique(align_actions(labels)[0, :2])) == {DOG_RUNNING}


def test_invalid_actions_cannot_win() -> None:
    labels = np.zeros((2, 4, 5), np.uint8)
    blob(labels[0], slice(0, 4), slice(0, 5), BALL_CLIMBING, BALL_JUMPING, 0.4)  # climbing is no ball action
    labels[1, 1:3, 1:4] = BALL_CLIMBING  # no valid vote at all
    aligned = align_actions(labels)
    assert set(np.unique(aligned[0])) == {BALL_JUMPING}
    assert set(np.unique(aligned[1, 1:3, 1:4])) == {BALL_NONE}


def moving_dog(shares_running: list[float]) -> np.ndarray:
    """A 6x6 dog shifting one pixel right per frame, with the given share of running pixels."""
    labels = np.zeros((len(shares_running), 10, 14), np.uint8)
    for frame, share in enumerate(shares_running):
        blob(labels[frame], slice(2, 8), slice(1 + frame, 7 + frame), DOG_WALKING, DOG_RUNNING, share)
    return labels


def test_tracking_votes_over_the_whole_track() -> None:
    labels = moving_dog([0.3, 0.3, 0.3, 0.3, 0.7])  # walking in 4 frames, running in the last
    per_frame = align_actions(labels)
    assert set(np.unique(per_frame[4])) == {0, DOG_RUNNING}
    tracked = align_actions(labels, track=True)
    assert set(np.unique(tracked)) == {0, DOG_WALKING}


def test_tracking_does_not_link_low_overlap_or_other_actors() -> None:
    labels = moving_dog([0.3, 0.3, 0.3, 0.3, 0.7])
    labels[4] = 0
    blob(labels[4], slice(2, 8), slice(8, 14), DOG_WALKING, DOG_RUNNING, 0.7)  # IoU with frame 3 = 12/60
    labels[3, 0, :] = ADULT_WALKING  # an adult in frame 3 ...
    labels[4, 0, :] = 11  # ... overlapping an adult-climbing in frame 4 (same actor: linked)
    labels[4, 9, :] = DOG_WALKING  # a dog strip that overlaps nothing
    tracked = align_actions(labels, track=True)
    assert set(np.unique(tracked[4, 2:8, 8:14])) == {DOG_RUNNING}  # its own track
    assert set(np.unique(tracked[:4, 2:8])) == {0, DOG_WALKING}
    assert set(np.unique(tracked[4, 0])) == {11}  # 14 climbing vs 14 walking: tie, lowest action wins
    assert set(np.unique(tracked[3, 0])) == {11}
    assert set(np.unique(tracked[4, 9])) == {DOG_WALKING}
    assert align_actions(labels, track=True, min_iou=0.1)[4, 2:8, 8:14].max() == DOG_WALKING


def class_probabilities(labels: np.ndarray, overrides: dict[int, dict[int, float]]) -> np.ndarray:
    """(T, 44, H, W) one-hot probabilities of ``labels``, with pixels of id k given ``overrides[k]``."""
    prob = np.zeros((labels.shape[0], len(CLASS_IDS), *labels.shape[1:]), np.float32)
    for index, class_id in enumerate(CLASS_IDS):
        prob[:, index] = labels == class_id
    for label_id, scores in overrides.items():
        where = labels == label_id
        for class_id, value in scores.items():
            prob[:, CLASS_IDS.index(class_id)][where] = value
    return prob


def test_probabilities_weight_the_votes() -> None:
    labels = np.zeros((1, 8, 8), np.uint8)
    blob(labels[0], slice(2, 6), slice(1, 6), DOG_RUNNING, DOG_WALKING, 0.4)  # 12 running, 8 walking pixels
    unsure_runners = {DOG_RUNNING: {DOG_RUNNING: 0.4, DOG_WALKING: 0.35, ADULT_WALKING: 0.25}}
    prob = class_probabilities(labels, unsure_runners)  # running 12 * 0.4 = 4.8, walking 12 * 0.35 + 8 = 12.2
    assert set(np.unique(align_actions(labels, prob=prob)[0, 2:6, 1:6])) == {DOG_WALKING}
    # only the dog's classes vote: adult-walking mass must not count as "walking"
    adult_heavy = class_probabilities(
        labels,
        {
            DOG_RUNNING: {DOG_RUNNING: 0.7, ADULT_WALKING: 0.3},  # running 12 * 0.7 = 8.4
            DOG_WALKING: {DOG_WALKING: 0.5, ADULT_WALKING: 0.5},  # walking 8 * 0.5 = 4, not 11.6
        },
    )
    assert set(np.unique(align_actions(labels, prob=adult_heavy)[0, 2:6, 1:6])) == {DOG_RUNNING}


@pytest.mark.parametrize("options", [{}, {"track": True}, {"connectivity": 1}, {"with_prob": True}])
def test_alignment_is_idempotent_and_yields_valid_ids(options: dict[str, object]) -> None:
    rng = np.random.default_rng(0)
    coarse = rng.choice(np.array((0, 0, 0, 11, 18, 77, 78, 31, 14, 255), np.uint8), size=(4, 6, 8))
    labels = coarse.repeat(3, axis=1).repeat(3, axis=2)  # blocky regions that persist over frames
    noise = rng.random(labels.shape) < 0.2
    labels[noise] = rng.choice(np.array((0, 12, 79, 36), np.uint8), size=int(noise.sum()))
    kwargs = dict(options)
    if kwargs.pop("with_prob", False):
        kwargs["prob"] = rng.random((labels.shape[0], len(CLASS_IDS), *labels.shape[1:])).astype(np.float32)
    once = align_actions(labels, **kwargs)
    assert np.array_equal(align_actions(once, **kwargs), once)
    actor_pixels = (labels >= 10) & (labels < 80)
    assert np.isin(once[actor_pixels], VALID_IDS).all()
    assert np.array_equal(once[~actor_pixels], labels[~actor_pixels])
    assert np.array_equal(once[actor_pixels] // 10, labels[actor_pixels] // 10)  # actors never change


def test_empty_video_and_bad_input() -> None:
    labels = np.zeros((3, 4, 4), np.uint8)
    assert np.array_equal(align_actions(labels, track=True), labels)
    with pytest.raises(ValueError, match="uint8"):
        align_actions(labels[0])
    with pytest.raises(ValueError, match="prob"):
        align_actions(labels, prob=np.zeros((3, 43, 4, 4)))
    with pytest.raises(ValueError, match="min_iou"):
        align_actions(labels, track=True, min_iou=0.0)
