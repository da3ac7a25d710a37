import json

import av
import cv2

from vscr_cli.pipeline import result_rows
from vscr_cli.stages.board import PICTURES
from vscr_cli.store import open_store

from .test_board import _events
from .test_report import check_page
from .test_train import _metrics


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
    assert set(report["scores"]) == {"cam-train", "cam-crf-train", "pred-train", "cam", "cam-crf", "pred-tags", "pred", "aligned"}
    for store, crf_row, cam_row in (("cam-crf.zarr", "cam-crf-train", "cam-train"), ("cam-test-crf.zarr", "cam-crf", "cam")):  # the like-with-like baseline: Stage I through the same CRF
        assert open_store(work / store, "cam").record.params["crf"] is True
        assert report["scores"][crf_row] != report["scores"][cam_row]
    for row in report["scores"].values():
        assert 0 <= row["actor_action"] <= 1 and 0 <= row["fg_iou"] <= 1
    for name in ("cam-train", "cam"):  # Stage I finds the actors even in the smoke run (seed 0: 39.8 and 62.6), so a scorer giving 0 fails
        assert report["scores"][name]["actor_action"] > 0.2 and report["scores"][name]["fg_iou"] > 0.1, name
    assert "train the VSCR network" in report["seconds"]
    for row in ("CAM (train)", "CAM + CRF (train)", "VSCR (train)", "CAM (test, tags given)", "CAM + CRF (test, tags given)", "VSCR (test, tags given)", "VSCR (test)", "VSCR + align (test)"):  # --no-crf: no "+ CRF" on the network's rows
        assert row in result.stdout, row
    assert "synth0000" not in result.stdout  # the stages' own output goes to stderr
    for name in ("edges.zarr", "cam.zarr", "cam-test.zarr", "model/model.safetensors", "pred-train.zarr", "pred-tags.zarr", "pred.zarr", "aligned.zarr"):
        assert (work / name).exists(), name
    sheets = sorted((work / "overlays").glob("*.png"))
    assert len(sheets) == 1 and cv2.imread(str(sheets[0])) is not None
    with av.open(str(sheets[0].with_suffix(".mp4"))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 6  # every frame of the test video
    page = work / "report" / "index.html"
    assert report["report"] == str(page) and f"report: {page}" in result.stdout.replace("\n", "")
    parser = check_page(page, {title: work / f"score-{name}.json" for name, _, title in result_rows(False)})  # the demo's table, in its order
    assert "curves-model.png" in parser.links and any(link.startswith("overlay-") for link in parser.links)
    board = _events(work / "model")  # what tensorboard --logdir WORK shows
    assert [e.step for e in board.Scalars("loss/total")] == [row["iteration"] for row in _metrics(work / "model")]
    assert [e.step for e in board.Images(PICTURES)] == [6]  # the demo's last iteration (tiny: 6)
    again = cli("-q", "report", work, "-o", tmp_path / "page")  # the command on the demo folder: its score reports by file name
    assert again.code == 0, again.stderr
    files = sorted(work / f"score-{name}.json" for name, _, _ in result_rows(False))
    check_page(tmp_path / "page" / "index.html", {path.stem.removeprefix("score-"): path for path in files})


def test_demo_refuses_a_used_folder(cli, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    result = cli("-q", "demo", tmp_path)
    assert result.code == 1 and "output exists" in result.stderr
