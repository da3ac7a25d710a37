import json

import av
import cv2

from vscr_cli.store import open_store


def test_demo_runs_every_stage_and_prints_scores(cli, tmp_path):
    work = tmp_path / "demo"
    result = cli("-q", "demo", work, "--size", "tiny", "--overlays", "1", "--no-crf", "--tag-votes", "class")
    assert result.code == 0, result.stderr
    report = json.loads((work / "demo.json").read_text())
    assert report["crf"] is False and report["tag_votes"] == "class"
    for store, votes in (("pred-train.zarr", "class"), ("pred-tags.zarr", "class"), ("pred.zarr", "actor")):  # every prediction stage took --no-crf; the tagged ones --tag-votes, the tag-free one records the default
        params = open_store(work / store, "pred").record.params
        assert params["crf"] is False and params["tag_votes"] == votes, store
    assert json.loads((work / "model" / "config.json").read_text())["train"]["crop_max_class_share"] == 0.75  # the cpu preset's
    assert set(report["scores"]) == {"cam-train", "pred-train", "cam", "pred-tags", "pred", "aligned"}
    for row in report["scores"].values():
        assert 0 <= row["actor_action"] <= 1 and 0 <= row["fg_iou"] <= 1
    assert "train the VSCR network" in report["seconds"]
    for row in ("CAM (train)", "VSCR (train)", "CAM (test, tags given)", "VSCR (test, tags given)", "VSCR (test)", "VSCR + align (test)"):
        assert row in result.stdout, row
    assert "synth0000" not in result.stdout  # the stages' own output goes to stderr
    for name in ("edges.zarr", "cam.zarr", "cam-test.zarr", "model/model.safetensors", "pred-train.zarr", "pred-tags.zarr", "pred.zarr", "aligned.zarr"):
        assert (work / name).exists(), name
    sheets = sorted((work / "overlays").glob("*.png"))
    assert len(sheets) == 1 and cv2.imread(str(sheets[0])) is not None
    with av.open(str(sheets[0].with_suffix(".mp4"))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6  # every frame of the test video


def test_demo_refuses_a_used_folder(cli, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    result = cli("-q", "demo", tmp_path)
    assert result.code == 1 and "output exists" in result.stderr
