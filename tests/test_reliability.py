"""Bad input in every command: one line `vscr: error: FILE: problem`, exit 1, no traceback, and
nothing destroyed or left behind that the command did not own (docs/store.md, Reliability)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from vscr_cli.datasets.a2d import A2DRelease
from vscr_cli.errors import StoreError
from vscr_cli.sources import discover
from vscr_cli.video import VideoSource
from vscr_cli.store import StoreWriter, check_video_id, open_store

from .conftest import TINY_TRAIN, vscr_process


def _one_line_error(result, *fragments: str) -> str:
    """Exit 1 and exactly one stderr line `vscr: error: ...` holding ``fragments``, no traceback; returns the line."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.code == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("vscr: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _frames(folder: Path, size: tuple[int, int], count: int = 3, seed: int = 0) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for number in range(count):
        PIL.Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / f"{number:05d}.png")
    return folder


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return _frames(tmp_path / "clip", (16, 24))


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- 1. --overwrite replaces only what vscr made --------------------------------------------------------
def test_overwrite_refuses_a_folder_vscr_did_not_make(cli, tmp_path, clip, hed_weights_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    before = _tree(precious)
    _one_line_error(cli("-q", "edges", clip, "-o", precious, "--overwrite"), str(precious), "did not make")
    _one_line_error(cli("-q", "synth", precious, "--videos", "1", "--overwrite"), "did not make")
    _one_line_error(cli("-q", "demo", precious, "--overwrite"), "did not make")
    assert _tree(precious) == before
    document = tmp_path / "notes.txt"
    document.write_text("keep me")
    _one_line_error(cli("-q", "edges", clip, "-o", document, "--overwrite"), "a file that vscr did not make")
    assert document.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "notes.txt", "precious"]  # no partial, no lock


def test_overwrite_replaces_a_vscr_store_and_train_refuses_other_folders(cli, tmp_path, clip, trained):
    store = tmp_path / "e.zarr"
    assert cli("-q", "edges", clip, "-o", store).code == 0
    assert cli("-q", "edges", clip, "-o", store, "--overwrite", "--threshold", "0.5").code == 0
    with open_store(store, "edges") as opened:
        assert opened.record.params["threshold"] == 0.5
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "table.csv").write_text("a,b\n")
    _one_line_error(cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", folder, "--overwrite", *TINY_TRAIN), "did not make")
    _one_line_error(cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", store, "--overwrite", *TINY_TRAIN), "is a vscr store, not a vscr model folder")
    assert (folder / "table.csv").read_text() == "a,b\n"


# -- 2. ids that would escape the output ---------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../../victim", "/abs/path", "a/b", "a\\b", "..", ".hidden", "", "zarr.json", "tab\there"])
def test_unsafe_ids_are_refused(bad):
    with pytest.raises(StoreError, match="unsafe video id"):
        check_video_id(bad, "here")
    with pytest.raises(StoreError, match="unsafe video id"):
        VideoSource(bad, Path("x.mp4"))


def test_safe_ids_pass():
    for good in ("-0qy0PmPxW8", "dog", "synth0001", "a.b"):
        assert check_video_id(good, "here") == good


def test_traversal_through_videoset_is_refused_before_writing(cli, tmp_path, synth):
    root = tmp_path / "a2d"
    shutil.copytree(synth.root, root)
    videoset = root / "Release" / "videoset.csv"
    rows = videoset.read_text().splitlines()
    rows[0] = ",".join(["../../victim", *rows[0].split(",")[1:]])
    videoset.write_text("\n".join(rows) + "\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("x")
    out = tmp_path / "out" / "e.zarr"
    (tmp_path / "out").mkdir()
    _one_line_error(cli("-q", "edges", root, "-o", out, "--overwrite"), "videoset.csv:1", "unsafe video id '../../victim'")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == []
    assert _tree(victim) == {"keep.txt": b"x"}


def test_a_store_recording_an_unsafe_id_is_refused(cli, tmp_path):
    store = tmp_path / "p.zarr"
    with StoreWriter(store, kind="pred") as writer:
        writer.write_video("clip", [0], {"label": np.zeros((1, 4, 4), np.uint8)})
    metadata = json.loads((store / "zarr.json").read_text())
    metadata["attributes"]["vscr"]["videos"] = ["../../x"]
    (store / "zarr.json").write_text(json.dumps(metadata))
    _one_line_error(cli("-q", "align", store, "-o", tmp_path / "a.zarr"), "unsafe video id")
    assert not (tmp_path / "a.zarr").exists() and not (tmp_path.parent / "x").exists()


# -- 3. tiny frames ------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", [1, 2])
def test_edges_on_tiny_frames_exits_normally(tmp_path, side, hed_weights_path):
    frames = _frames(tmp_path / f"tiny{side}", (side, side))
    done = vscr_process("-q", "edges", frames, "-o", tmp_path / "e.zarr", text=True)
    assert done.returncode == 0, done.stderr
    with open_store(tmp_path / "e.zarr", "edges") as store:
        assert store.read(f"tiny{side}", "segments").shape == (3, side, side)


# -- 4. unwritable or invalid output paths -------------------------------------------------------------
def test_unwritable_and_invalid_outputs_are_one_line(cli, tmp_path, clip, hed_weights_path, monkeypatch):
    a_file = tmp_path / "file"
    a_file.write_text("")
    _one_line_error(cli("-q", "edges", clip, "-o", a_file / "e.zarr"), "is not a folder")
    _one_line_error(cli("-q", "edges", clip, "-o", tmp_path / "missing" / "e.zarr"), "parent folder", "does not exist")
    _one_line_error(cli("-q", "edges", clip, "-o", "/proc/x.zarr"), "/proc")
    monkeypatch.chdir(tmp_path)
    _one_line_error(cli("-q", "edges", clip, "-o", ".", "--overwrite"), str(tmp_path), "did not make")
    _one_line_error(cli("-q", "synth", "/proc/synth", "--videos", "1"), "/proc")
    _one_line_error(cli("-q", "show", "nothing.zarr", "-o", tmp_path / "missing" / "x.png"), "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip", "file"]


# -- 5. damaged models, classifiers, checkpoints --------------------------------------------------------
def _model_copy(trained, tmp_path: Path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(trained.model, model, ignore=shutil.ignore_patterns("frames.zarr"))
    return model


@pytest.mark.parametrize(
    "damage, fragment",
    [
        (lambda m: (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:5000]), "damaged or unreadable weights"),
        (lambda m: (m / "model.safetensors").write_bytes(b""), "damaged or unreadable weights"),
        (lambda m: (m / "config.json").write_text("{}"), "no 'train' entry"),
        (lambda m: (m / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda m: shutil.copy(m.parent / "other.safetensors", m / "model.safetensors"), "weights do not fit"),
    ],
)
def test_damaged_model_is_one_line(cli, tmp_path, trained, synth, damage, fragment):
    model = _model_copy(trained, tmp_path)
    from safetensors.torch import save_file
    import torch

    save_file({"conv.weight": torch.zeros(3, 3)}, tmp_path / "other.safetensors")
    damage(model)
    result = cli("-q", "predict", synth.root, "-m", model, "-o", tmp_path / "p.zarr")
    _one_line_error(result, str(model), fragment)
    assert len(result.stderr) < 400  # no dump of key names
    assert not (tmp_path / "p.zarr").exists() and not (tmp_path / ".p.zarr.partial").exists()


def test_truncated_checkpoint_on_resume_is_one_line(cli, tmp_path, trained):
    model = _model_copy(trained, tmp_path)
    checkpoint = model / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    result = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", model, "--resume", *TINY_TRAIN, "--iterations", "8")
    _one_line_error(result, "checkpoint.pt", "damaged checkpoint")


def test_truncated_classifier_is_one_line(cli, tmp_path, trained, synth):
    classifier = tmp_path / "classifier"
    shutil.copytree(Path(str(trained.cam).removesuffix(".zarr") + ".classifier"), classifier)
    weights = classifier / "classifier.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    result = cli("-q", "cam", synth.root, "--tags", synth.root / "tags.csv", "--classifier", classifier, "--every", "3", "-o", tmp_path / "c.zarr")
    _one_line_error(result, "classifier.safetensors", "damaged or unreadable weights")


# -- 6. stores of different footage ---------------------------------------------------------------------
def test_train_refuses_stores_of_different_footage(cli, tmp_path, synth, trained):
    other = tmp_path / "other"
    shutil.copytree(synth.root, other)
    clips = other / "Release" / "clips320H"
    first, second = sorted(clips.glob("*.mp4"))[:2]  # same ids and frame counts, swapped footage
    first.rename(clips / "swap.mp4")
    second.rename(first)
    (clips / "swap.mp4").rename(second)
    edges = tmp_path / "edges.zarr"
    assert cli("-q", "edges", other, "--every", "3", "-o", edges).code == 0
    model = tmp_path / "model"
    _one_line_error(cli("-q", "train", "--edges", edges, "--cam", trained.cam, "-o", model, *TINY_TRAIN), "different footage", first.stem)
    assert not model.exists()  # 11: a failed train leaves no folder behind


# -- 7. outputs are checked before any work --------------------------------------------------------------
def test_cam_refuses_an_existing_output_before_fitting(cli, tmp_path, synth):
    output = tmp_path / "c.zarr"
    output.mkdir()
    (output / "x").write_text("")
    _one_line_error(cli("-q", "cam", synth.root, "--tags", synth.root / "tags.csv", "-o", output), "output exists")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.zarr"]  # no c.classifier/


# -- 8. stray files in an A2D annotation folder ----------------------------------------------------------
def test_non_numeric_mat_files_are_ignored(tmp_path, synth):
    root = tmp_path / "a2d"
    shutil.copytree(synth.root, root)
    release = A2DRelease(root)
    video = release.videos("all")[0]
    expected = release.annotated_frames(video)
    (release.root / "Annotations" / "mat" / video / "._00005.mat").write_bytes(b"\x00\x05macOS")
    assert release.annotated_frames(video) == expected
    assert discover([root])[0].annotated == expected


# -- 9. damaged stores ------------------------------------------------------------------------------------
def _pred_store(path: Path) -> Path:
    with StoreWriter(path, kind="pred") as writer:
        writer.write_video("clip", [0, 1], {"label": np.zeros((2, 4, 4), np.uint8)})  # all zeros: still stored
    return path


def test_missing_chunk_is_damage_not_background(cli, tmp_path):
    store = _pred_store(tmp_path / "p.zarr")
    chunk = store / "clip" / "label" / "c" / "1" / "0" / "0"
    assert chunk.is_file()
    chunk.unlink()
    with open_store(store) as opened, pytest.raises(StoreError, match="1 of 2 chunks missing"):
        opened.read("clip", "label")
    _one_line_error(cli("-q", "align", store, "-o", tmp_path / "a.zarr"), "damaged", "chunks missing")


def test_corrupt_group_metadata_is_one_line(cli, tmp_path):
    store = _pred_store(tmp_path / "p.zarr")
    (store / "clip" / "zarr.json").write_text("{broken")
    _one_line_error(cli("-q", "align", store, "-o", tmp_path / "a.zarr"), "video 'clip'", "damaged")


# -- 10. an interrupted run's finished videos --------------------------------------------------------------
def test_rerun_without_resume_keeps_an_interrupted_runs_videos(cli, capfd, tmp_path, clip, hed_weights_path):
    target = tmp_path / "e.zarr"
    with pytest.raises(RuntimeError):
        with StoreWriter(target, kind="edges") as writer:
            writer.write_video("done", [0], {"edge": np.zeros((1, 2, 2), np.uint8)})
            raise RuntimeError("killed")
    partial = tmp_path / ".e.zarr.partial"
    assert partial.is_dir()
    capfd.readouterr()  # the interrupted run warned that it kept them
    _one_line_error(cli("-q", "edges", clip, "-o", target), "1 finished videos", "--resume")
    assert partial.is_dir()
    assert cli("-q", "edges", clip, "-o", target, "--overwrite").code == 0
    assert not partial.exists()


# -- 11. the small ones ------------------------------------------------------------------------------------
def test_bad_input_leaves_no_partial_and_no_errno(cli, tmp_path, hed_weights_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 255, 4000, dtype=np.uint8).tobytes())
    result = cli("-q", "edges", bad, "-o", tmp_path / "e.zarr")
    _one_line_error(result, "bad.mp4", "Invalid data found")
    assert "Errno" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mp4"]


def test_truncated_jpeg_is_an_error_without_libjpeg_noise(cli, tmp_path, hed_weights_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for number in range(2):
        PIL.Image.fromarray(np.full((32, 48, 3), 80 * number, np.uint8)).save(frames / f"{number:05d}.jpg", quality=95)
    whole = (frames / "00001.jpg").read_bytes()
    (frames / "00001.jpg").write_bytes(whole[: len(whole) // 2])
    result = cli("-q", "edges", frames, "-o", tmp_path / "e.zarr")
    _one_line_error(result, "00001.jpg", "cannot read image")


def test_wrong_kind_reads_well(cli, tmp_path):
    store = tmp_path / "e.zarr"
    with StoreWriter(store, kind="edges") as writer:
        writer.write_video("v", [0], {"edge": np.zeros((1, 2, 2), np.uint8)})
    _one_line_error(cli("-q", "align", store), "is an edges store, expected pred")


def test_missing_parent_folders_are_refused_by_every_writer(cli, tmp_path, trained):
    _one_line_error(cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", tmp_path / "no" / "model", *TINY_TRAIN), "parent folder")
    _one_line_error(cli("-q", "synth", tmp_path / "no" / "synth", "--videos", "1"), "parent folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_hidden_files_in_source_folders_are_skipped(tmp_path):
    videos = tmp_path / "videos"
    clip = _frames(videos / "clip", (8, 8), count=2)
    (clip / "._00000.png").write_bytes(b"\x00\x05resource fork")
    (videos / "._other.mp4").write_bytes(b"\x00\x05resource fork")
    found = discover([videos])
    assert [v.video_id for v in found] == ["clip"]
    assert found[0].count_frames() == 2
