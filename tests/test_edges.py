import shutil

import numpy as np

from vscr_cli.stages.edges import edge_segments
from vscr_cli.store import open_store


def _two_rooms(strength: int) -> np.ndarray:
    """(40, 60) uint8 edge map: a wall of ``strength`` splits the frame, faint texture elsewhere."""
    edge = (np.random.default_rng(0).random((40, 60)) * 20).astype(np.uint8)
    edge[:, 29:31] = strength
    return edge


def test_segments_follow_the_hierarchy():
    strong = _two_rooms(250)
    coarse = edge_segments(strong, 0.9)
    assert coarse.dtype == np.int32
    assert np.unique(coarse[:, :29]).size == 1 and np.unique(coarse[:, 31:]).size == 1
    assert coarse[0, 0] != coarse[0, -1]  # the wall survives a high cut
    assert edge_segments(strong, 1.0).max() == 0  # everything merges at the top
    strong[19:21, :29] = 120  # a weaker wall splits the left room
    fine = edge_segments(strong, 0.3)
    assert fine.max() == 2 and fine[0, 0] != fine[-1, 0]
    assert edge_segments(strong, 0.9).max() == 1
    for segments in (coarse, fine):  # ids are 0..n-1, numbered in raster order
        ids = np.unique(segments)
        assert ids.tolist() == list(range(ids.size)) and segments[0, 0] == 0
    # a weak wall in the same texture merges earlier than a strong one
    assert edge_segments(_two_rooms(40), 0.5).max() <= coarse.max()


def test_edges_command_writes_a_valid_store_and_resumes(cli, synth, tmp_path, hed_weights_path):
    out = tmp_path / "edges.zarr"
    args = ["edges", synth.root, "--max-frames", "2", "--precision", "fp32", "-o", out]
    result = cli("-q", *args)
    assert result.code == 0, result.stderr
    with open_store(out, "edges") as store:
        assert store.videos == [v.video_id for v in synth.summary.videos]
        params = store.record.params
        assert params["threshold"] == 0.4 and params["precision"] == "fp32" and len(params["weights_sha256"]) == 64
        for video in store.videos:
            edge, segments = store.read(video, "edge"), store.read(video, "segments")
            assert store.frame_index(video).tolist() == [0, 11]
            assert edge.shape == segments.shape == (2, 64, 96) and edge.dtype == np.uint8 and segments.dtype == np.int32
            for frame_edge, frame_segments in zip(edge, segments):
                np.testing.assert_array_equal(frame_segments, edge_segments(frame_edge, 0.4))
            assert edge.max() > 100  # actors on textures do have strong edges
    again = cli("-q", *args)
    assert again.code == 1 and "output exists" in again.stderr
    resumed = cli("-q", *args, "--resume")
    assert resumed.code == 0
    changed = cli("-q", *args[:-2], "--threshold", "0.5", "-o", out, "--resume")
    assert changed.code == 1 and "different parameters (threshold)" in changed.stderr


def test_bad_video_stops_or_is_skipped(cli, synth, tmp_path, hed_weights_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(synth.root / "Release" / "clips320H" / "synth0000.mp4", videos / "good.mp4")
    (videos / "bad.mp4").write_bytes(b"not a video at all" * 100)
    out = tmp_path / "e.zarr.zip"
    stopped = cli("-q", "edges", videos, "--max-frames", "1", "-o", out)
    assert stopped.code == 1 and "bad.mp4: cannot open video" in stopped.stderr
    assert not out.exists()
    skipped = cli("-q", "edges", videos, "--max-frames", "1", "-o", out, "--skip-bad")
    assert skipped.code == 0, skipped.stderr
    with open_store(out) as store:
        assert store.videos == ["good"]
        assert store.record.skipped[0]["video"] == "bad" and "cannot open video" in store.record.skipped[0]["reason"]


def test_davis_dev_frames(cli, davis_dev, tmp_path, hed_weights_path):
    out = tmp_path / "davis.zarr"
    result = cli("-q", "edges", davis_dev / "dog" / "frames", davis_dev / "cows" / "frames", "--max-frames", "1", "--height", "120", "-o", out)
    assert result.code == 0, result.stderr
    with open_store(out, "edges") as store:
        assert store.videos == ["dog", "cows"]
        assert store.read("dog", "segments").shape == (1, 120, 214)
        assert 5 < store.read("dog", "segments").max() < 200
