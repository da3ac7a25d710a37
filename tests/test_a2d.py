import h5py
import numpy as np
import pytest

from vscr_cli import labels
from vscr_cli.datasets import open_ground_truth
from vscr_cli.datasets.a2d import A2DRelease, VideosetRow, write_annotation
from vscr_cli.datasets.davis import DavisFolder
from vscr_cli.errors import SourceError
from vscr_cli.tags import read_tags_csv


def test_synth_is_read_back_with_the_labels_it_wrote(synth):
    release = A2DRelease(synth.root)
    dense = A2DRelease(synth.root, dense=True)
    assert list(release.rows) == [v.video_id for v in synth.summary.videos]
    csv_tags = read_tags_csv(synth.root / "tags.csv")
    for video in synth.summary.videos:
        row = release.rows[video.video_id]
        assert (row.frames, row.height, row.width, row.labeled_frames) == (12, 64, 96, 3)
        assert row.split == (1 if video.split == "test" else 0)
        assert release.annotated_frames(video.video_id) == video.annotated
        assert release.tags(video.video_id) == video.tags == csv_tags[video.video_id]
        assert dense.labeled_frames(video.video_id) == tuple(range(12))
        for frame in video.annotated:
            annotation = release.annotation(video.video_id, frame)
            np.testing.assert_array_equal(annotation.label_map, dense.label_map(video.video_id, frame))
            assert annotation.label_map.shape == (64, 96)
            present = set(np.unique(annotation.label_map).tolist()) - {0}
            assert present <= set(video.tags)
            assert sorted(annotation.ids.tolist()) == sorted(present) or video.kind == "multi"
            union = annotation.masks.any(axis=0)
            np.testing.assert_array_equal(union, annotation.label_map > 0)
            for mask, box in zip(annotation.masks, annotation.boxes):
                rows, cols = np.nonzero(mask)
                assert box.tolist() == [cols.min() + 1, rows.min() + 1, cols.max() + 1, rows.max() + 1]
        if video.kind == "empty":
            assert video.tags == ()


def test_mat_files_are_matlab_v73_column_major(synth):
    video = synth.summary.videos[0]
    path = synth.root / "Release" / "Annotations" / "mat" / video.video_id / f"{video.annotated[0] + 1:05d}.mat"
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(path, "r") as mat:
        assert mat["reS_id"].shape == (96, 64)  # W x H: MATLAB's H x W stored column-major
        assert mat["reS_id"].attrs["MATLAB_class"] == b"double"


def test_reader_maps_unknown_ids_to_ignore(tmp_path):
    release = tmp_path / "Release"
    (release / "Annotations" / "mat" / "vid").mkdir(parents=True)
    (release / "videoset.csv").write_text("vid,11,0,1,4,6,10,1,1\n")
    label_map = np.zeros((4, 6), np.uint8)
    label_map[1:3, 1:4] = 11
    label_map[0, 5] = 14  # not an A2D class
    masks = (label_map == 11)[None]
    write_annotation(release / "Annotations" / "mat" / "vid" / "00003.mat", label_map, masks, np.array([11]))
    reader = A2DRelease(tmp_path)
    assert reader.videos("test") == ["vid"] and reader.videos("train") == []
    assert reader.annotated_frames("vid") == (2,)
    annotation = reader.annotation("vid", 2)
    assert annotation.ignored_pixels == 1
    assert annotation.label_map[0, 5] == labels.IGNORE and annotation.label_map[1, 1] == 11
    assert annotation.masks.shape == (1, 4, 6)
    assert reader.tags("vid") == (11,)


def test_videoset_errors(tmp_path):
    (tmp_path / "videoset.csv").write_text("vid,11,0,1\n")
    with pytest.raises(SourceError, match="videoset.csv:1: expected 9 columns"):
        A2DRelease(tmp_path).rows
    with pytest.raises(SourceError, match="not an A2D Release folder"):
        A2DRelease(tmp_path / "nowhere")
    row = VideosetRow("v", 11, 0.0, 1.5, 320, 427, 40, 3, 0)
    assert VideosetRow.parse(row.to_fields(), "x") == row


def test_ground_truth_for_davis_style_folders(davis_dev):
    truth = open_ground_truth(davis_dev)
    assert isinstance(truth, DavisFolder)
    assert "cows" in truth.videos()
    dog = truth.label_map("dog", 0)
    assert dog.shape == (480, 854) and set(np.unique(dog).tolist()) == {0, labels.id_of("dog-walking")}
    assert set(np.unique(truth.label_map("cows", 0)).tolist()) == {0}
    assert len(truth.labeled_frames("parkour")) == 100
