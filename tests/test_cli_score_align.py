"""Tests of ``vscr score`` and ``vscr align`` on stores built from synthesised and DAVIS ground truth."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from skimage.measure import label as connected_components

from vscr_cli import labels
from vscr_cli.datasets import GroundTruth, open_ground_truth
from vscr_cli.stages.score import METRICS, ConfusionAccumulator
from vscr_cli.store import StoreWriter, open_store

from .conftest import REPO

Transform = Callable[[str, np.ndarray], np.ndarray]


def ground_truth_video(gt: GroundTruth, video: str) -> tuple[tuple[int, ...], np.ndarray]:
    """The labelled frame numbers of a video and their (T, H, W) maps."""
    frames = gt.labeled_frames(video)
    return frames, np.stack([gt.label_map(video, frame) for frame in frames])


def write_pred(
    path: Path,
    gt: GroundTruth,
    videos: list[str] | None = None,
    transform: Transform = lambda video, maps: maps,
    kind: str = "pred",
    with_prob: bool = False,
    inputs: dict | None = None,
) -> Path:
    """A store holding ``transform(ground truth)`` as ``label`` (and one-hot ground truth as ``prob``),
    recording ``inputs`` (e.g. the sources it was "predicted" from)."""
    with StoreWriter(path, kind=kind, params={"model": "ground truth"}, inputs=inputs, argv=["test"]) as writer:
        for video in videos or gt.videos():
            frames, maps = ground_truth_video(gt, video)
            data = {"label": transform(video, maps.copy())}
            if with_prob:
                data["prob"] = np.moveaxis(np.eye(labels.NUM_CLASSES, dtype=np.float16)[labels.CLASS_INDEX[maps]], -1, 1)
            writer.write_video(video, frames, data, attrs={"fps": 24})
    return path


#: (256,) uint8: each valid id -> another valid id of the same actor (other ids unchanged).
OTHER_ACTION = np.arange(256, dtype=np.uint8)
for _id in labels.VALID_IDS:
    OTHER_ACTION[_id] = next(i for i in labels.VALID_IDS if i // 10 == _id // 10 and i != _id)


def mix_actions(video: str, maps: np.ndarray) -> np.ndarray:
    """Give every third pixel of each actor region (a strict minority) another action of the same actor."""
    for frame in maps:
        actors = np.where(np.isin(frame, labels.VALID_IDS), frame // 10, 0)
        regions = connected_components(actors, background=0, connectivity=2).ravel()
        pixels = np.flatnonzero(regions)
        order = np.argsort(regions[pixels], kind="stable")
        grouped = regions[pixels][order]
        rank = np.arange(grouped.size) - np.searchsorted(grouped, grouped)  # position inside the region
        chosen = pixels[order[rank % 3 == 2]]
        frame.flat[chosen] = OTHER_ACTION[frame.flat[chosen]]
    return maps


def corrupt(video: str, maps: np.ndarray) -> np.ndarray:
    """Shift the maps sideways, wipe a band, and write 255 ("no prediction", a miss) into a corner
    (an id outside A2D's, such as 14, is refused: see test_reliability_outputs)."""
    maps = np.roll(maps, 3, axis=2)
    maps[:, :4] = 0
    maps[:, -3:, -3:] = labels.IGNORE
    return maps


def scores_of(gt: GroundTruth, videos: list[str], transform: Transform) -> dict:
    """The JSON form of the scores computed directly with ConfusionAccumulator."""
    accumulator = ConfusionAccumulator()
    for video in videos:
        _, maps = ground_truth_video(gt, video)
        accumulator.add(maps, transform(video, maps.copy()), video=video)
    return json.loads(json.dumps(accumulator.scores().as_dict()))


@pytest.fixture(scope="module")
def dense_gt(synth) -> GroundTruth:
    return open_ground_truth(synth.root, dense=True)


@pytest.fixture(scope="module")
def perfect(synth, dense_gt, tmp_path_factory) -> Path:
    return write_pred(tmp_path_factory.mktemp("perfect") / "pred.zarr.zip", dense_gt)


def test_perfect_prediction_scores_100(cli, synth, perfect, tmp_path):
    done = cli("score", perfect, "--gt", synth.root, "--dense", "--json", "-")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report["metrics"]) == {f"{s}.{m}" for s in ("actor_action", "actor", "action") for m in ("miou", "class_acc", "global_acc")} | {"fg_iou", "fg_j_mean"}
    assert all(value == 1.0 for value in report["metrics"].values())
    frames = len(synth.summary.videos) * synth.summary.config["frames"]
    assert report["scores"]["frames"] == frames and report["missing_frames"] == 0
    assert report["scores"]["pixels"] == frames * synth.summary.config["height"] * synth.summary.config["width"]

    saved = tmp_path / "scores.json"
    shown = cli("score", perfect, "--gt", synth.root, "--metrics", "miou,fg_iou", "--per-class", "--json", saved)
    assert shown.code == 0, shown.stderr
    assert json.loads(saved.read_text())["metrics"] == {"actor_action.miou": 1.0, "actor.miou": 1.0, "action.miou": 1.0, "fg_iou": 1.0}
    assert "actor-action" in shown.stdout and "100.0" in shown.stdout and "class acc." not in shown.stdout
    assert "foreground: foreground IoU 100.0" in shown.stdout
    annotated = sum(len(v.annotated) for v in synth.summary.videos)
    assert f"{annotated} frames of {len(synth.summary.videos)} videos" in shown.stdout
    assert "actor-action IoU per class" in shown.stdout and "classes in neither map not shown" in shown.stdout


def test_corrupted_prediction_matches_the_accumulator(cli, synth, dense_gt, tmp_path):
    pred = write_pred(tmp_path / "bad.zarr", dense_gt, transform=corrupt)
    done = cli("score", pred, "--gt", synth.root, "--dense", "--json", "-")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["scores"] == scores_of(dense_gt, dense_gt.videos(), corrupt)
    assert report["metrics"]["actor_action.miou"] < 0.95 and report["metrics"]["fg_iou"] < 0.95
    assert report["scores"]["actor_action"]["invalid_predictions"][0] > 0  # background predicted as 255


def test_per_video_scores_are_each_videos_own(cli, synth, dense_gt, tmp_path):
    videos = dense_gt.videos()
    broken = videos[1]
    only_one_broken: Transform = lambda video, maps: corrupt(video, maps) if video == broken else maps
    pred = write_pred(tmp_path / "one-bad.zarr", dense_gt, transform=only_one_broken)
    done = cli("score", pred, "--gt", synth.root, "--dense", "--metrics", "miou,fg_iou", "--per-video", "--json", tmp_path / "report.json")
    assert done.code == 0, done.stderr
    per_video = json.loads((tmp_path / "report.json").read_text())["per_video"]
    assert list(per_video) == videos
    expected = scores_of(dense_gt, [broken], corrupt)
    assert expected["fg_iou"] < 0.95 and per_video[broken]["fg_iou"] == pytest.approx(expected["fg_iou"])
    assert per_video[broken]["actor_action.miou"] == pytest.approx(expected["actor_action"]["miou"])
    assert per_video[broken]["frames"] == expected["frames"]
    assert all(per_video[video]["actor_action.miou"] == 1.0 and per_video[video]["fg_iou"] in (1.0, None) for video in videos if video != broken)
    assert "per video" in done.stdout and f"{100 * expected['fg_iou']:.1f}" in done.stdout


def test_missing_frames_are_an_error_unless_allowed(cli, synth, dense_gt, tmp_path):
    sparse_gt = open_ground_truth(synth.root)  # annotated frames only
    pred = write_pred(tmp_path / "sparse.zarr", sparse_gt)
    dense_frames = len(synth.summary.videos) * synth.summary.config["frames"]
    missing = dense_frames - sum(len(v.annotated) for v in synth.summary.videos)

    refused = cli("score", pred, "--gt", synth.root, "--dense")
    assert refused.code == 1 and refused.stdout == ""
    assert refused.stderr.strip().count("\n") == 0
    assert f"{missing} of {dense_frames} ground-truth frames are not predicted" in refused.stderr
    assert "--allow-missing" in refused.stderr

    allowed = cli("score", pred, "--gt", synth.root, "--dense", "--allow-missing", "--json", "-")
    assert allowed.code == 0, allowed.stderr
    report = json.loads(allowed.stdout)
    assert report["missing_frames"] == missing and report["scores"]["frames"] == dense_frames

    def background_where_missing(video: str, maps: np.ndarray) -> np.ndarray:
        keep = np.isin(dense_gt.labeled_frames(video), sparse_gt.labeled_frames(video))
        maps[~keep] = 0
        return maps

    assert report["scores"] == scores_of(dense_gt, dense_gt.videos(), background_where_missing)

    sampled = cli("score", pred, "--gt", synth.root, "--dense", "--predicted-only", "--json", "-")
    assert sampled.code == 0, sampled.stderr
    report = json.loads(sampled.stdout)
    assert report["missing_frames"] == 0 and report["scores"]["frames"] == dense_frames - missing
    assert report["metrics"]["actor_action.miou"] == 1.0  # the annotated frames were predicted perfectly


def test_split_requires_its_videos(cli, synth, dense_gt, tmp_path):
    train = [v.video_id for v in synth.summary.videos if v.split == "train"]
    pred = write_pred(tmp_path / "train.zarr", dense_gt, videos=train)
    assert cli("score", pred, "--gt", synth.root, "--split", "train", "--json", "-").code == 0
    refused = cli("score", pred, "--gt", synth.root, "--split", "test")
    assert refused.code == 1 and "not predicted" in refused.stderr


def test_bad_inputs_are_refused_with_one_line(cli, synth, dense_gt, perfect, tmp_path):
    edges = tmp_path / "edges.zarr"
    with StoreWriter(edges, kind="edges") as writer:
        writer.write_video("synth0000", [0], {"edge": np.zeros((1, 4, 4), np.uint8)})
    for args in (("score", edges, "--gt", synth.root), ("align", edges, "-o", tmp_path / "out.zarr")):
        done = cli(*args)
        assert done.code == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("vscr: error: ") and "is an edges store, expected pred" in done.stderr

    small = write_pred(tmp_path / "small.zarr", dense_gt, transform=lambda video, maps: maps[:, ::2, ::2].copy())
    done = cli("score", small, "--gt", synth.root, "--dense")
    assert done.code == 1 and "prediction is 32x48, ground truth 64x96" in done.stderr
    resized = cli("score", small, "--gt", synth.root, "--dense", "--resize", "--json", "-")
    assert resized.code == 0, resized.stderr
    upsampled = scores_of(dense_gt, dense_gt.videos(), lambda video, maps: maps[:, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2))
    assert json.loads(resized.stdout)["scores"] == upsampled

    with StoreWriter(tmp_path / "stranger.zarr", kind="pred") as writer:
        writer.write_video("stranger", [0], {"label": np.zeros((1, 64, 96), np.uint8)})
    done = cli("score", tmp_path / "stranger.zarr", "--gt", synth.root)
    assert done.code == 1 and "have no ground truth (e.g. 'stranger')" in done.stderr
    assert cli("score", perfect, "--gt", synth.root, "--metrics", "miou,recall").code == 2
    assert cli("align", perfect, "--connectivity", "6", "-o", tmp_path / "x.zarr").code == 2


def test_align_in_a_real_pipe_fixes_mixed_actions(cli, synth, dense_gt, tmp_path):
    mixed = write_pred(tmp_path / "mixed.zarr.zip", dense_gt, transform=mix_actions)
    before = cli("score", mixed, "--gt", synth.root, "--dense", "--json", "-")
    assert before.code == 0, before.stderr
    python = f"{sys.executable} -m vscr_cli"
    aligned_path = tmp_path / "aligned.zarr.zip"
    pipeline = f"{python} -q align < {mixed} | tee {aligned_path} | {python} score - --gt {synth.root} --dense --json -"
    after = subprocess.run(pipeline, shell=True, capture_output=True, text=True, cwd=REPO)
    assert after.returncode == 0, after.stderr
    mixed_scores, aligned_scores = json.loads(before.stdout)["metrics"], json.loads(after.stdout)["metrics"]
    assert mixed_scores["actor_action.miou"] < 0.9
    assert mixed_scores["actor.miou"] == 1.0  # mixing changed actions only

    with open_store(aligned_path, "pred") as store:
        assert store.record.params == {"aligned": {"track": False, "min_iou": 0.3, "connectivity": 8, "use_prob": False}}
        assert store.record.inputs["pred"]["params"] == {"model": "ground truth"}
        assert store.videos == dense_gt.videos()
        single = {v.video_id for v in synth.summary.videos if v.kind != "multi"}
        for video in store.videos:
            frames, maps = ground_truth_video(dense_gt, video)
            assert store.frame_index(video).tolist() == list(frames)
            assert store.video_attrs(video) == {"fps": 24}
            aligned = store.read(video, "label")
            assert np.array_equal(aligned // 10, maps // 10)  # actors untouched
            if video in single:  # a minority of wrong actions in each region is outvoted
                assert np.array_equal(aligned, maps)
    assert aligned_scores["actor_action.miou"] > mixed_scores["actor_action.miou"] + 0.05
    assert aligned_scores["actor.miou"] == 1.0


def test_align_options_soft_votes_tracks_and_resume(cli, synth, dense_gt, tmp_path):
    single = [v.video_id for v in synth.summary.videos if v.kind == "single"][:3]
    wrong = write_pred(tmp_path / "wrong.zarr", dense_gt, single, transform=lambda video, maps: OTHER_ACTION[maps], with_prob=True)
    out = tmp_path / "soft.zarr"
    done = cli("align", wrong, "-o", out, "--use-prob", "--track", "--min-iou", "0.5", "--connectivity", "4")
    assert done.code == 0, done.stderr
    hard = tmp_path / "hard.zarr"
    assert cli("align", wrong, "-o", hard, "--track").code == 0
    with open_store(out, "pred") as soft_store, open_store(hard, "pred") as hard_store, open_store(wrong) as source:
        assert soft_store.record.params["aligned"] == {"track": True, "min_iou": 0.5, "connectivity": 4, "use_prob": True}
        for video in single:
            _, maps = ground_truth_video(dense_gt, video)
            assert np.array_equal(soft_store.read(video, "prob"), source.read(video, "prob"))  # passed through
            assert np.array_equal(soft_store.read(video, "label"), maps)  # soft votes follow the probabilities
            assert np.array_equal(hard_store.read(video, "label"), OTHER_ACTION[maps])  # hard votes follow the labels

    again = cli("align", wrong, "-o", out, "--use-prob", "--track", "--min-iou", "0.5", "--connectivity", "4")
    assert again.code == 1 and "output exists" in again.stderr
    resumed = cli("align", wrong, "-o", out, "--use-prob", "--track", "--min-iou", "0.5", "--connectivity", "4", "--resume")
    assert resumed.code == 0, resumed.stderr
    changed = cli("align", wrong, "-o", out, "--resume")
    assert changed.code == 1 and "different parameters (aligned)" in changed.stderr

    hard_only = write_pred(tmp_path / "labels-only.zarr", dense_gt, videos=["synth0001"])
    refused = cli("align", hard_only, "-o", tmp_path / "none.zarr", "--use-prob")
    assert refused.code == 1 and "has no 'prob' array" in refused.stderr


def test_davis_prediction_from_its_masks_scores_fg_iou_100(cli, davis_dev, tmp_path):
    gt = open_ground_truth(davis_dev)
    videos = ["car-shadow", "cows"]  # an actor and an actor-free sequence
    pred = write_pred(tmp_path / "davis.zarr", gt, videos=videos, inputs={"sources": [str(davis_dev / video / "frames") for video in videos]})
    done = cli("score", pred, "--gt", davis_dev, "--json", "-")
    assert done.code == 0, done.stderr
    report = json.loads(done.stdout)
    found = cli("score", pred, "--json", "-")  # the frame folders' DAVIS-style folder
    assert found.code == 0, found.stderr
    assert json.loads(found.stdout)["scores"] == report["scores"] and json.loads(found.stdout)["gt"] == str(davis_dev.absolute())
    assert report["metrics"]["fg_iou"] == 1.0 and report["metrics"]["fg_j_mean"] == 1.0
    assert report["scores"]["frames"] == len(gt.labeled_frames("car-shadow")) + len(gt.labeled_frames("cows"))
    assert set(report["metrics"]) == {f"{s}.{m}" for s in ("actor_action", "actor", "action") for m in METRICS[:3]} | {"fg_iou", "fg_j_mean"}


def test_a_cam_store_scores_its_pseudo_labels_with_no_cam_as_background(cli, synth, dense_gt, tmp_path):
    def no_cam_for_the_first_video(video: str, maps: np.ndarray) -> np.ndarray:
        return np.full_like(maps, labels.IGNORE) if video == dense_gt.videos()[0] else maps

    cams = tmp_path / "cam.zarr"
    with StoreWriter(cams, kind="cam", argv=["test"]) as writer:
        for video in dense_gt.videos():
            frames, maps = ground_truth_video(dense_gt, video)
            writer.write_video(video, frames, {"pseudo": no_cam_for_the_first_video(video, maps), "cam": np.zeros_like(maps)})
    done = cli("score", cams, "--gt", synth.root, "--dense", "--json", "-")
    assert done.code == 0, done.stderr
    as_background = scores_of(dense_gt, dense_gt.videos(), lambda video, maps: np.zeros_like(maps) if video == dense_gt.videos()[0] else maps)
    assert json.loads(done.stdout)["scores"] == as_background


def test_without_gt_the_ground_truth_of_the_recorded_sources_is_used(cli, synth, dense_gt, tmp_path):
    pred = write_pred(tmp_path / "pred.zarr", dense_gt, transform=corrupt, inputs={"sources": [str(synth.root)], "split": "all"})
    aligned = tmp_path / "aligned.zarr"
    assert cli("-q", "align", pred, "-o", aligned).code == 0
    explicit = cli("score", aligned, "--gt", synth.root, "--dense", "--json", "-")
    for store in (pred, aligned):  # the aligned store's sources are those of its input
        found = cli("score", store, "--dense", "--json", "-")
        assert found.code == 0, found.stderr
        assert f"ground truth: {synth.root / 'Release'}" in " ".join(found.stderr.split())
    assert json.loads(found.stdout)["scores"] == json.loads(explicit.stdout)["scores"]
    assert json.loads(found.stdout)["gt"] == str(synth.root / "Release")


def test_without_gt_sources_without_ground_truth_are_one_clear_error(cli, synth, dense_gt, perfect, tmp_path):
    video = tmp_path / "elsewhere" / "synth0000.mp4"
    video.parent.mkdir()
    shutil.copy(synth.root / "Release" / "clips320H" / video.name, video)
    pred = write_pred(tmp_path / "pred.zarr", dense_gt, videos=["synth0000"], inputs={"sources": [str(video)]})
    done = cli("score", pred)
    assert done.code == 1 and done.stderr.count("\n") == 1, done.stderr
    assert f"vscr: error: {pred}: its source {video} holds no ground truth for video 'synth0000'" in done.stderr
    assert done.stderr.rstrip().endswith("pass --gt")
    unrecorded = cli("score", perfect)
    assert unrecorded.code == 1 and "cannot follow its recorded sources to ground truth (no video sources given); pass --gt" in unrecorded.stderr
