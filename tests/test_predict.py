import subprocess
import sys

import numpy as np
import torch

from vscr_cli import labels
from vscr_cli.stages.predict import allowed_classes, decide, restrict, video_classes
from vscr_cli.tags import read_tags_csv
from vscr_cli.store import open_store

from .conftest import REPO


def test_decision_takes_foreground_when_its_classes_outweigh_background():
    prob = torch.zeros(1, labels.NUM_CLASSES, 1, 3)
    prob[0, 0] = torch.tensor([0.4, 0.6, 0.9])
    prob[0, 1] = torch.tensor([0.35, 0.3, 0.05])  # adult-climbing
    prob[0, 2] = torch.tensor([0.25, 0.1, 0.05])  # adult-crawling
    assert decide(prob).tolist() == [[[1, 0, 0]]]  # arg-max alone would say background at pixel 0


def test_tags_restrict_the_decision_to_background_and_the_videos_classes():
    prob = torch.full((1, labels.NUM_CLASSES, 1, 1), 0.01)
    prob[0, 0], prob[0, 1], prob[0, 5] = 0.3, 0.35, 0.07  # background, adult-climbing, another class
    prob /= prob.sum(1, keepdim=True)
    assert decide(prob).item() == 1
    kept = restrict(prob, allowed_classes([labels.CLASS_IDS[5]]))
    torch.testing.assert_close(kept.sum(1), torch.ones(1, 1, 1))
    assert decide(kept).item() == 0 and kept[0, 1].item() == 0
    assert decide(restrict(prob, allowed_classes([labels.CLASS_IDS[1]]))).item() == 1


def test_video_level_decision_keeps_the_classes_pooled_over_the_video():
    prob = torch.zeros(4, labels.NUM_CLASSES, 2, 2)
    prob[:, 0] = 0.5
    prob[:, 3] = 0.3  # the video's class throughout
    prob[:, 7] = 0.2
    prob[0, 7], prob[0, 9] = 0.0, 0.2  # one frame's stray class
    allowed = video_classes(prob.sum(dim=(0, 2, 3)))
    assert allowed.nonzero().flatten().tolist() == [0, 3, 7]


def test_predict_writes_label_maps_and_probabilities(cli, trained, synth, tmp_path):
    out = tmp_path / "pred.zarr"
    result = cli("-q", "predict", synth.root, "-m", trained.model, "--annotated-only", "--split", "test", "--prob", "-o", out)
    assert result.code == 0, result.stderr
    test_videos = [v for v in synth.summary.videos if v.split == "test"]
    with open_store(out, "pred") as store:
        assert store.videos == [v.video_id for v in test_videos]
        assert len(store.record.params["model_sha256"]) == 64
        for video in test_videos:
            label, prob = store.read(video.video_id, "label"), store.read(video.video_id, "prob")
            assert store.frame_index(video.video_id).tolist() == list(video.annotated)
            assert label.shape == (3, 64, 96) and label.dtype == np.uint8
            assert set(np.unique(label).tolist()) <= set(labels.CLASS_IDS)
            assert prob.shape == (3, labels.NUM_CLASSES, 64, 96) and prob.dtype == np.float16
            np.testing.assert_allclose(prob.astype(np.float32).sum(1), 1, atol=0.02)
    scored = cli("score", out, "--gt", synth.root, "--json", "-")
    assert scored.code == 0, scored.stderr


def test_predict_with_tags_labels_only_the_videos_tags(cli, trained, synth, tmp_path):
    out = tmp_path / "pred.zarr"
    result = cli("-q", "predict", synth.root, "-m", trained.model, "--annotated-only", "--split", "test", "--tags", synth.root / "tags.csv", "-o", out)
    assert result.code == 0, result.stderr
    tags = read_tags_csv(synth.root / "tags.csv")
    with open_store(out, "pred") as store:
        assert store.record.params["decode"] == "tags"
        for video in store.videos:
            assert set(np.unique(store.read(video, "label")).tolist()) <= {0, *tags[video]}


def test_predict_align_pipe(trained, synth, tmp_path):
    clip = synth.root / "Release" / "clips320H" / "synth0001.mp4"
    aligned = tmp_path / "aligned.zarr.zip"
    command = f"{sys.executable} -m vscr_cli -q predict {clip} -m {trained.model} --max-frames 2 | {sys.executable} -m vscr_cli -q align > {aligned}"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    with open_store(aligned, "pred") as store:
        assert store.videos == ["synth0001"] and store.read("synth0001", "label").shape == (2, 64, 96)
        assert "aligned" in store.record.params
