import av
import cv2

from vscr_cli.store import open_store


def test_show_writes_contact_sheets_and_videos(cli, trained, synth, tmp_path):
    sheet = tmp_path / "cam.png"
    result = cli("-q", "show", trained.cam, "-o", sheet, "--video", "synth0000", "--frames", "2", "--side-by-side", "--gt", synth.root)
    assert result.code == 0, result.stderr
    image = cv2.imread(str(sheet))
    assert image is not None
    # two rows of 64-px frames under 18-px captions; frame | ground truth? | CAM | pseudo-label + legend
    assert image.shape[0] >= 2 * (64 + 18) and image.shape[1] > 3 * 96

    movie = tmp_path / "edges.mp4"
    assert cli("-q", "show", trained.edges, "-o", movie).code == 0
    with av.open(str(movie)) as container, open_store(trained.edges) as store:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(decoded) == len(store.frame_index(store.videos[0]))
        assert decoded[0].shape[:2] == (64 + 18, 96)


def test_show_refuses_bad_outputs(cli, trained, tmp_path):
    assert cli("-q", "show", trained.cam, "-o", tmp_path / "x.gif").code == 2
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"")
    again = cli("-q", "show", trained.cam, "-o", taken)
    assert again.code == 1 and "output exists" in again.stderr


def test_show_video_keeps_one_layout_when_only_some_frames_are_annotated(cli, trained, synth, tmp_path):
    movie = tmp_path / "edges-gt.mp4"
    result = cli("-q", "show", trained.edges, "-o", movie, "--gt", synth.root, "--side-by-side")
    assert result.code == 0, result.stderr
    with av.open(str(movie)) as container:
        shapes = {frame.to_ndarray(format="rgb24").shape for frame in container.decode(video=0)}
    assert len(shapes) == 1  # frame | ground truth or "not annotated" | edges, plus the legend, on every frame


def test_a_sheet_with_ground_truth_shows_the_annotated_frames(cli, trained, synth, tmp_path):
    sheet = tmp_path / "edges-gt.png"
    assert cli("-q", "show", trained.edges, "-o", sheet, "--gt", synth.root, "--video", "synth0000").code == 0
    annotated = len(synth.summary.videos[0].annotated)  # fewer than the 6 frames a sheet shows by default
    assert cv2.imread(str(sheet)).shape[0] == annotated * (64 + 18) + (annotated - 1) * 4
