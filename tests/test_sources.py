import dataclasses
import shutil

import cv2
import numpy as np
import pytest

from vscr_cli.errors import SourceError
from vscr_cli.sources import discover
from vscr_cli.video import FrameSelection, resize_to_height


def _frame_folder(synth, tmp_path, video_id="synth0000"):
    """Decode a synthesised clip into a DAVIS-style <id>/frames folder of PNGs."""
    [video] = [v for v in discover([synth.root]) if v.video_id == video_id]
    folder = tmp_path / video_id / "frames"
    folder.mkdir(parents=True)
    frames = dict(video.read(range(video.count_frames())))
    for number, frame in frames.items():
        cv2.imwrite(str(folder / f"{number:05d}.png"), frame[..., ::-1])
    return folder, frames


def test_a2d_root_gives_every_video_with_its_annotations(synth):
    videos = discover([synth.root])
    assert [v.video_id for v in videos] == [v.video_id for v in synth.summary.videos]
    for video, written in zip(videos, synth.summary.videos):
        assert video.path.name == f"{video.video_id}.mp4"
        assert video.annotated == written.annotated
        assert video.count_frames() == 12
    train = discover([synth.root], a2d_split="train")
    test = discover([synth.root / "Release"], a2d_split="test")
    assert sorted(v.video_id for v in train + test) == sorted(v.video_id for v in videos)
    assert {v.video_id for v in test} == {v.video_id for v in synth.summary.videos if v.split == "test"}


def test_frame_selection(synth):
    video = discover([synth.root])[0]
    assert video.select(FrameSelection()) == list(range(12))
    assert video.select(FrameSelection(every=5)) == [0, 5, 10]
    assert video.select(FrameSelection(max_frames=3)) == [0, 6, 11]
    assert video.select(FrameSelection(annotated_only=True)) == list(video.annotated)
    beyond = dataclasses.replace(video, annotated=(40,))  # annotations past the video's 12 frames
    with pytest.raises(SourceError, match="no frame selected"):
        beyond.select(FrameSelection(annotated_only=True))
    frames = list(video.read([7, 2], height=32))
    assert [n for n, _ in frames] == [2, 7]
    assert frames[0][1].shape == (32, 48, 3) and frames[0][1].dtype == np.uint8


def test_frame_folder_reads_the_same_frames_as_the_video(synth, tmp_path):
    folder, decoded = _frame_folder(synth, tmp_path)
    [video] = discover([folder])
    assert video.video_id == "synth0000"  # a folder named frames takes its parent's name
    assert video.count_frames() == 12
    for number, frame in video.read([0, 11]):
        np.testing.assert_array_equal(frame, decoded[number])
    with pytest.raises(SourceError, match="--annotated-only needs an A2D source"):
        video.select(FrameSelection(annotated_only=True))


def test_folders_of_videos_and_lists(synth, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("synth0001", "synth0002"):
        shutil.copy(synth.root / "Release" / "clips320H" / f"{name}.mp4", clips / f"{name}.mp4")
    assert [v.video_id for v in discover([clips])] == ["synth0001", "synth0002"]
    listing = tmp_path / "list.txt"
    listing.write_text("# my clips\nclips/synth0002.mp4\n\n")
    assert [v.video_id for v in discover([listing])] == ["synth0002"]


def test_id_clash_missing_and_corrupt_inputs(synth, tmp_path):
    clip = synth.root / "Release" / "clips320H" / "synth0001.mp4"
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(clip, other / "synth0001.mp4")
    with pytest.raises(SourceError, match="two videos have the id 'synth0001'"):
        discover([clip, other / "synth0001.mp4"])
    with pytest.raises(SourceError, match="no such file or folder"):
        discover([tmp_path / "absent.mp4"])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    [video] = discover([broken])
    with pytest.raises(SourceError, match="broken.mp4: cannot (open|decode) video"):
        video.select(FrameSelection())
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match="no videos or frame folders found"):
        discover([empty])
    with pytest.raises(SourceError, match="not a video file"):
        discover([synth.root / "tags.csv"])
    with pytest.raises(SourceError, match="--every must be at least 1"):
        FrameSelection(every=0)


def test_truncated_video_reports_missing_frames(synth, tmp_path):
    clip = (synth.root / "Release" / "clips320H" / "synth0002.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip[: len(clip) // 2])
    [video] = discover([cut])
    with pytest.raises(SourceError, match="cut.mp4"):
        list(video.read(range(12)))


def test_resize_keeps_aspect_and_even_width():
    frame = np.zeros((480, 854, 3), np.uint8)
    assert resize_to_height(frame, 320).shape == (320, 570, 3)
    assert resize_to_height(frame, None) is frame


def test_davis_dev_frame_folders(davis_dev):
    videos = discover([davis_dev])
    assert {v.video_id for v in videos} == {"blackswan", "car-shadow", "cows", "dance-twirl", "dog", "drift-straight", "parkour"}
    dog = next(v for v in videos if v.video_id == "dog")
    assert dog.count_frames() == 60
    [(number, frame)] = list(dog.read([3], height=240))
    assert number == 3 and frame.shape == (240, 428, 3)
