"""Tests of the A2D scoring protocol (vscr_cli.stages.score)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, jaccard_score, recall_score

from vscr_cli.labels import CLASS_IDS
from vscr_cli.stages.score import METRICS, SPACES, ConfusionAccumulator, Scores


def score(*pairs: tuple[list[list[int]] | np.ndarray, list[list[int]] | np.ndarray]) -> Scores:
    accumulator = ConfusionAccumulator()
    for gt, pred in pairs:
        accumulator.add(np.asarray(gt, dtype=np.uint8), np.asarray(pred, dtype=np.uint8))
    return accumulator.scores()


def sub_confusion(scores: Scores, space: str, classes: list[int]) -> list[list[int]]:
    """The rows and columns of ``classes`` in a space's confusion matrix."""
    space_scores = scores.space(space)
    index = [space_scores.classes.index(c) for c in classes]
    return [[space_scores.confusion[i][j] for j in index] for i in index]


# Ground truth and prediction of a 2x4 frame: 6 scored pixels, gt 255 and invalid 14 ignored.
GT = [[0, 0, 77, 77], [78, 78, 255, 14]]
PRED = [[0, 77, 77, 78], [78, 0, 77, 77]]


def test_hand_computed_actor_action_confusion_and_scores() -> None:
    scores = score((GT, PRED))
    # pairs (gt, pred): (0,0) (0,77) (77,77) (77,78) (78,78) (78,0)
    assert sub_confusion(scores, "actor_action", [0, 77, 78]) == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert sum(map(sum, scores.actor_action.confusion)) == 6
    aa = scores.actor_action
    assert aa.per_class_iou[0] == pytest.approx(1 / 3)  # 1 / (2 + 2 - 1)
    assert aa.per_class_iou[77] == pytest.approx(1 / 3)
    assert aa.per_class_iou[78] == pytest.approx(1 / 3)
    assert aa.miou == pytest.approx(1 / 3)
    assert aa.class_acc == pytest.approx(1 / 2)
    assert aa.global_acc == pytest.approx(3 / 6)
    assert scores.frames == 1 and scores.pixels == 6 and scores.pixels_ignored == 2


def test_hand_computed_actor_and_action_spaces() -> None:
    scores = score((GT, PRED))
    # actor: gt 0 0 7 7 7 7, pred 0 7 7 7 7 0
    assert sub_confusion(scores, "actor", [0, 7]) == [[1, 1], [1, 3]]
    assert scores.actor.per_class_iou[7] == pytest.approx(3 / 5)  # 3 / (4 + 4 - 3)
    assert scores.actor.miou == pytest.approx((1 / 3 + 3 / 5) / 2)
    assert scores.actor.class_acc == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert scores.actor.global_acc == pytest.approx(4 / 6)
    # action: gt 0 0 7 7 8 8, pred 0 7 7 8 8 0
    assert sub_confusion(scores, "action", [0, 7, 8]) == [[1, 1, 0], [0, 1, 1], [1, 0, 1]]
    assert scores.action.miou == pytest.approx(1 / 3)
    # foreground = any actor vs background: same as the actor space here
    assert scores.fg_iou == pytest.approx(3 / 5)


def test_confusion_accumulates_over_frames() -> None:
    second_gt, second_pred = [[11, 11], [0, 0]], [[11, 0], [0, 0]]
    scores = score((GT, PRED), (second_gt, second_pred))
    assert sub_confusion(scores, "actor_action", [0, 11, 77, 78]) == [
        [3, 0, 1, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 1],
        [1, 0, 0, 1],
    ]
    assert scores.frames == 2 and scores.pixels == 10
    assert scores.actor_action.global_acc == pytest.approx(6 / 10)


def test_stacked_frames_equal_frames_added_one_by_one() -> None:
    rng = np.random.default_rng(0)
    gt = rng.choice(np.array(CLASS_IDS + (255,), dtype=np.uint8), size=(3, 8, 9))
    pred = rng.choice(np.array(CLASS_IDS, dtype=np.uint8), size=(3, 8, 9))
    stacked, single = ConfusionAccumulator(), ConfusionAccumulator()
    stacked.add(gt, pred)
    for frame_gt, frame_pred in zip(gt, pred):
        single.add(frame_gt, frame_pred)
    assert np.array_equal(stacked.id_counts, single.id_counts)
    assert stacked.scores().as_dict() == single.scores().as_dict()


def test_perfect_prediction_scores_one_everywhere() -> None:
    rng = np.random.default_rng(1)
    gt = rng.choice(np.array(CLASS_IDS + (255, 14), dtype=np.uint8), size=(4, 16, 16))
    scores = score((gt, gt.copy()))
    for value in scores.select().values():
        assert value == 1.0
    for space in SPACES:
        assert all(sum(row) == row[i] for i, row in enumerate(scores.space(space).confusion))


def test_ignored_ground_truth_pixels_do_not_count_whatever_the_prediction() -> None:
    gt = [[77, 77, 255, 14, 31]]
    reference = score(([[77, 77]], [[77, 77]]))
    for wrong in ([[77, 77, 11, 0, 78]], [[77, 77, 255, 14, 31]]):
        scores = score((gt, wrong))
        assert scores.as_dict() | {"pixels_ignored": 0} == reference.as_dict() | {"pixels_ignored": 0}
        assert scores.pixels == 2 and scores.pixels_ignored == 3


@pytest.mark.parametrize("invalid_id", [255, 14, 31, 80])
def test_invalid_prediction_on_valid_ground_truth_is_a_miss_for_no_class(invalid_id: int) -> None:
    scores = score(([[77, 77, 0]], [[77, invalid_id, 0]]))
    aa = scores.actor_action
    assert aa.per_class_iou[77] == pytest.approx(1 / 2)  # the row keeps the pixel
    assert aa.class_acc == pytest.approx((1 / 2 + 1) / 2)
    assert aa.global_acc == pytest.approx(2 / 3)
    assert aa.invalid_predictions[aa.classes.index(77)] == 1
    assert sum(map(sum, aa.confusion)) == 2
    # invalid in every space: 14 is not read as "adult" nor 31 as "ball"
    assert math.isnan(scores.actor.per_class_iou[1]) and math.isnan(scores.actor.per_class_iou[3])
    assert scores.actor.per_class_iou[7] == pytest.approx(1 / 2)
    assert scores.fg_iou == pytest.approx(1 / 2)


def test_absent_classes_are_skipped_from_the_mean() -> None:
    scores = score(([[0, 0, 77, 77]], [[0, 0, 77, 77]]))
    present = {c: v for c, v in scores.actor_action.per_class_iou.items() if not math.isnan(v)}
    assert present == {0: 1.0, 77: 1.0}
    assert scores.actor_action.miou == 1.0
    assert sum(math.isnan(v) for v in scores.actor_action.per_class_iou.values()) == len(CLASS_IDS) - 2


def test_predicted_but_absent_class_counts_as_zero() -> None:
    scores = score(([[0, 0, 77, 77]], [[11, 0, 77, 77]]))
    aa = scores.actor_action
    assert aa.per_class_iou[11] == 0.0
    assert aa.per_class_iou[0] == pytest.approx(1 / 2)
    assert aa.miou == pytest.approx((0.0 + 1 / 2 + 1.0) / 3)
    assert aa.class_acc == pytest.approx((1 / 2 + 1.0) / 2)  # recall is undefined for 11: skipped


def test_empty_accumulator_is_all_nan() -> None:
    scores = ConfusionAccumulator().scores()
    assert all(math.isnan(v) for v in scores.select().values())
    assert scores.frames == 0 and scores.pixels == 0


SPACE_PROJECTIONS = {
    "actor_action": (list(CLASS_IDS), lambda ids: ids),
    "actor": (list(range(8)), lambda ids: ids // 10),
    "action": (list(range(10)), lambda ids: ids % 10),
}


@pytest.mark.parametrize("space", SPACES)
def test_agrees_with_sklearn_on_random_maps(space: str) -> None:
    rng = np.random.default_rng(2)
    gt_ids = np.array((0, 0, 0, 11, 12, 18, 77, 78, 36, 255, 14), dtype=np.uint8)
    pred_ids = np.array((0, 0, 11, 12, 18, 19, 77, 79, 36, 45, 255, 31), dtype=np.uint8)
    frames = [(rng.choice(gt_ids, size=(12, 15)), rng.choice(pred_ids, size=(12, 15))) for _ in range(5)]
    scores = score(*frames).space(space)

    gt = np.concatenate([f[0].ravel() for f in frames]).astype(np.int64)
    pred = np.concatenate([f[1].ravel() for f in frames]).astype(np.int64)
    scored = np.isin(gt, CLASS_IDS)
    labels, project = SPACE_PROJECTIONS[space]
    y_true = project(gt[scored])
    y_pred = np.where(np.isin(pred[scored], CLASS_IDS), project(pred[scored]), -1)  # -1: no class

    assert np.array_equal(np.array(scores.confusion), confusion_matrix(y_true, y_pred, labels=labels))
    iou = jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0)
    iou[~np.isin(labels, y_true) & ~np.isin(labels, y_pred)] = np.nan  # in neither map: skipped
    np.testing.assert_allclose(list(scores.per_class_iou.values()), iou, equal_nan=True)
    assert scores.miou == pytest.approx(np.nanmean(iou))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
    assert scores.class_acc == pytest.approx(np.nanmean(recall))
    assert scores.global_acc == pytest.approx(accuracy_score(y_true, y_pred))


def test_merge_equals_one_accumulator() -> None:
    rng = np.random.default_rng(3)
    ids = np.array(CLASS_IDS + (255,), dtype=np.uint8)
    frames = [(rng.choice(ids, size=(6, 7)), rng.choice(ids, size=(6, 7)), f"v{i % 2}") for i in range(4)]
    whole, first, second = ConfusionAccumulator(), ConfusionAccumulator(), ConfusionAccumulator()
    for index, (gt, pred, video) in enumerate(frames):
        whole.add(gt, pred, video=video)
        (first if index < 2 else second).add(gt, pred, video=video)
    first.merge(second)
    assert first.scores().as_dict() == whole.scores().as_dict()


def test_fg_j_mean_averages_frames_per_video_then_videos() -> None:
    accumulator = ConfusionAccumulator()
    frames = [  # (gt, pred, video): frame J
        ([[77, 77, 0, 0]], [[77, 0, 0, 0]], "a"),  # 1/2
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], "a"),  # no foreground in either map: 1
        ([[11, 0, 0, 0]], [[0, 11, 0, 0]], "b"),  # 0
        ([[255, 255]], [[11, 0]], "b"),  # nothing scored: no J
    ]
    for gt, pred, video in frames:
        accumulator.add(np.array(gt, np.uint8), np.array(pred, np.uint8), video=video)
    scores = accumulator.scores()
    assert scores.fg_j_mean == pytest.approx(((1 / 2 + 1) / 2 + 0) / 2)
    assert scores.fg_iou == pytest.approx(1 / 4)  # pooled: 1 hit / (3 gt fg + 2 predicted fg - 1 hit)
    assert scores.frames == 4


def test_select_and_json() -> None:
    scores = score((GT, PRED))
    assert list(scores.select(["miou"], ["actor"])) == ["actor.miou"]
    assert set(scores.select()) == {f"{s}.{m}" for s in SPACES for m in METRICS if not m.startswith("fg")} | {
        "fg_iou",
        "fg_j_mean",
    }
    with pytest.raises(ValueError, match="unknown metric"):
        scores.select(["mIoU"])
    with pytest.raises(ValueError, match="unknown label space"):
        scores.select(["miou"], ["object"])
    document = json.loads(json.dumps(scores.as_dict(), allow_nan=False))
    assert document["actor_action"]["per_class_iou"]["77"] == pytest.approx(1 / 3)
    assert document["actor_action"]["per_class_iou"]["11"] is None


def test_rejects_mismatched_or_non_uint8_maps() -> None:
    accumulator = ConfusionAccumulator()
    with pytest.raises(ValueError, match="shape"):
        accumulator.add(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        accumulator.add(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.uint8))
