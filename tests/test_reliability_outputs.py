"""Issue #35, outputs and stores: no command loses a user's file, follows a planted symlink, resumes or
scores against other footage, writes a store its reader rejects, or prints more than one line.

Each test asserts the exit code, the one stderr line `vscr: error: FILE: problem` (no traceback) and
the contents of every folder it touches before and after (:func:`_tree`). The data is the issue's:
``vscr synth s --videos 4 --frames 6 --height 48 --width 64`` and stores made from it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import zarr
import zarr.storage

from vscr_cli.cli import run
from vscr_cli.datasets.a2d import A2DRelease
from vscr_cli.errors import StoreError
from vscr_cli.sources import discover
from vscr_cli.store import SOURCE_DIGEST, StoreWriter, open_store, output_kind

from .conftest import vscr_process
from .test_reliability import _one_line_error

SYNTH = ["--videos", "4", "--frames", "6", "--height", "48", "--width", "64"]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every entry under ``folder``, hidden ones too: a file's bytes, a symlink's target, a folder as such."""
    entries = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            entries[str(path.relative_to(folder))] = b"-> " + os.readlink(path).encode()
        else:
            entries[str(path.relative_to(folder))] = path.read_bytes() if path.is_file() else b"<folder>"
    return entries


def _synth(root: Path, *args: str) -> Path:
    assert run(["-q", "synth", str(root), *SYNTH, *args]) == 0
    return root


@pytest.fixture(scope="module")
def s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's synthetic set: 4 videos of 6 frames, 48x64."""
    return _synth(tmp_path_factory.mktemp("s") / "s")


@pytest.fixture(scope="module")
def s4(s: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second set with the same ids, split and annotations as ``s`` but other footage."""
    folder = tmp_path_factory.mktemp("s4")
    other = _synth(folder / "other", "--seed", "7")
    copy = shutil.copytree(s, folder / "s4")
    for clip in (copy / "Release" / "clips320H").iterdir():
        shutil.copyfile(other / "Release" / "clips320H" / clip.name, clip)
    return copy


def _pred(path: Path, root: Path, label: Callable[[str, np.ndarray], np.ndarray] = lambda video, maps: maps) -> Path:
    """A pred store "predicted" from the footage of ``root``: ``label(video, ground truth)`` at the
    annotated frames, recording the sources and each video's footage digest as vscr predict does."""
    release = A2DRelease(root / "Release")
    with StoreWriter(path, kind="pred", params={"model_sha256": "ground truth"}, inputs={"sources": [str(root / "Release")], "split": "all"}) as writer:
        for source in discover([root / "Release"]):
            frames = release.labeled_frames(source.video_id)
            maps = np.stack([release.label_map(source.video_id, frame) for frame in frames])
            writer.write_video(source.video_id, frames, {"label": label(source.video_id, maps)}, {SOURCE_DIGEST: source.digest()})
    return path


@pytest.fixture(scope="module")
def pz(s: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _pred(tmp_path_factory.mktemp("pz") / "pz.zarr.zip", s)


@pytest.fixture
def umask() -> Iterator[int]:
    """A umask of 027 for the test: every output file must be 0o640."""
    previous = os.umask(0o027)
    yield 0o640
    os.umask(previous)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs folder (skipped where mounting is not permitted); fill it with :func:`_fill`."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=True)


def _fill(disk: Path, free: int = 4096) -> None:
    """Fill ``disk`` up to ``free`` bytes."""
    with (disk / "filler").open("wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
        except OSError:
            pass
    os.truncate(disk / "filler", (disk / "filler").stat().st_size - free)


def _score(cli, pred: Path, s: Path, *args: object):
    return cli("-q", "score", pred, "--gt", s / "Release", "--split", "test", *args)


# -- 1. score --json FILE: --overwrite, only over its own report, atomically ----------------------------
def test_score_json_refuses_a_store_and_a_users_file(cli, tmp_path, s, pz):
    work = tmp_path / "work"
    work.mkdir()
    pz2 = Path(shutil.copyfile(pz, work / "pz2.zarr.zip"))
    notes = work / "notes.txt"
    notes.write_text("my notes")
    before = _tree(work)
    for extra in ([], ["--overwrite"]):
        _one_line_error(_score(cli, pz2, s, "--json", pz2, *extra), str(pz2))
        _one_line_error(_score(cli, pz2, s, "--json", notes, *extra), str(notes))
    _one_line_error(_score(cli, pz2, s, "--json", notes, "--overwrite"), "a file that vscr did not make")
    assert _tree(work) == before


def test_score_json_replaces_only_its_own_report(cli, tmp_path, s, pz, umask):
    work = tmp_path / "work"
    work.mkdir()
    report = work / "r.json"
    assert _score(cli, pz, s, "--json", report).code == 0
    assert json.loads(report.read_text())["vscr_output"]["kind"] == "scores" and output_kind(report) == "scores"
    assert report.stat().st_mode & 0o777 == umask
    before = _tree(work)
    _one_line_error(_score(cli, pz, s, "--json", report), str(report), "output exists")
    assert _tree(work) == before
    assert _score(cli, pz, s, "--json", report, "--metrics", "miou", "--overwrite").code == 0
    assert list(json.loads(report.read_text())["metrics"]) == ["actor_action.miou", "actor.miou", "action.miou"]
    assert sorted(_tree(work)) == ["r.json"] and report.stat().st_mode & 0o777 == umask


def test_score_json_on_a_full_disk_keeps_the_old_report(cli, s, pz, full_disk):
    report = full_disk / "r.json"
    assert _score(cli, pz, s, "--json", report).code == 0
    _fill(full_disk)
    before = _tree(full_disk)
    _one_line_error(_score(cli, pz, s, "--json", full_disk / "new.json"), str(full_disk / "new.json"), "No space left on device")
    _one_line_error(_score(cli, pz, s, "--json", report, "--overwrite"), str(report), "No space left on device")
    assert _tree(full_disk) == before


# -- 4, 14. no fixed-name temporary follows a planted symlink ----------------------------------------------
def test_a_planted_packing_symlink_never_redirects_a_zip(cli, tmp_path, pz, umask):
    out, user = tmp_path / "out", tmp_path / "user2"
    out.mkdir()
    user.mkdir()
    (user / "notes.txt").write_text("user2's notes")
    (out / ".hz.zarr.zip.packing").symlink_to(user / "notes.txt")
    assert cli("-q", "align", pz, "-o", out / "hz.zarr.zip").code == 0
    assert _tree(user) == {"notes.txt": b"user2's notes"}
    assert sorted(_tree(out)) == [".hz.zarr.zip.packing", "hz.zarr.zip"]
    assert (out / "hz.zarr.zip").stat().st_mode & 0o777 == umask
    with open_store(out / "hz.zarr.zip", "pred") as aligned:
        assert len(aligned.videos) == 4


@pytest.mark.parametrize("planted", [".a.zarr.partial", ".a.zarr.lock"])
def test_a_planted_partial_or_lock_symlink_is_refused(cli, tmp_path, pz, planted):
    out, user = tmp_path / "out", tmp_path / "user2"
    out.mkdir()
    user.mkdir()
    (user / "notes.txt").write_text("user2's notes")
    (out / planted).symlink_to(user if planted.endswith(".partial") else user / "notes.txt")
    before = {"out": _tree(out), "user": _tree(user)}
    for extra in ([], ["--overwrite"], ["--resume"]):
        _one_line_error(cli("-q", "align", pz, "-o", out / "a.zarr", *extra), str(out / "a.zarr"), planted, "symbolic link")
    assert {"out": _tree(out), "user": _tree(user)} == before


def test_an_output_where_nothing_can_be_written_names_the_output(cli, pz):
    _one_line_error(cli("-q", "align", pz, "-o", "/proc/x.zarr"), "/proc/x.zarr: ")
    assert ".lock" not in cli("-q", "align", pz, "-o", "/proc/x.zarr").stderr


# -- 5. show --overwrite replaces only its own picture -----------------------------------------------------
def test_show_overwrite_replaces_only_its_own_picture(cli, tmp_path, s, pz, umask):
    user = tmp_path / "user"
    user.mkdir()
    PIL.Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(user / "img.png")
    shutil.copyfile(s / "Release" / "clips320H" / "synth0000.mp4", user / "holiday.mp4")
    before = _tree(user)
    for picture in ("img.png", "holiday.mp4"):
        _one_line_error(cli("-q", "show", pz, "-o", user / picture, "--overwrite"), str(user / picture), "did not make")
    assert _tree(user) == before
    for picture, kind in (("sheet.png", "sheet"), ("clip.mp4", "video")):
        assert cli("-q", "show", pz, "-o", user / picture).code == 0
        assert output_kind(user / picture) == kind and (user / picture).stat().st_mode & 0o777 == umask
        _one_line_error(cli("-q", "show", pz, "-o", user / picture), "output exists")
        assert cli("-q", "show", pz, "-o", user / picture, "--overwrite", "--frames", "2").code == 0
    assert sorted(_tree(user)) == ["clip.mp4", "holiday.mp4", "img.png", "sheet.png"]


# -- 8. --resume compares parameters as they are recorded ---------------------------------------------------
def test_resume_compares_parameters_in_their_recorded_form(tmp_path):
    target = tmp_path / "c.zarr"
    params = {"cam_heights": (64, 96), "selection": {"every": 1}}
    with pytest.raises(KeyboardInterrupt), StoreWriter(target, kind="cam", params=params) as writer:
        writer.write_video("v0", [0], {"pseudo": np.zeros((1, 2, 2), np.uint8)})
        raise KeyboardInterrupt  # killed after the first video
    with StoreWriter(target, kind="cam", params=params, resume=True) as writer:
        assert writer.completed == {"v0"}
        writer.write_video("v1", [0], {"pseudo": np.ones((1, 2, 2), np.uint8)})
    with StoreWriter(target, kind="cam", params=params, resume=True) as writer:  # extend a finished store
        writer.write_video("v2", [0], {"pseudo": np.ones((1, 2, 2), np.uint8)})
    with open_store(target, "cam") as store:
        assert store.videos == ["v0", "v1", "v2"] and store.record.params["cam_heights"] == [64, 96]
    assert all(path.startswith("c.zarr") for path in _tree(tmp_path))  # no partial, no lock


def test_cam_resume_extends_a_finished_store(cli, tmp_path, s, lite0_weights_path):
    cam = ["-q", "cam", s / "Release", "--tags", s / "tags.csv", "--epochs", "1", "--fit-frames", "4", "--input-height", "48", "--cam-heights", "48,64", "-o", tmp_path / "c.zarr"]
    assert cli(*cam).code == 0
    done = cli(*cam, "--resume")
    assert done.code == 0 and done.stderr == "", done.stderr
    with open_store(tmp_path / "c.zarr", "cam") as store:
        assert store.videos == ["synth0000", "synth0001", "synth0002", "synth0003"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.classifier", "c.zarr"]  # no partial, no lock


# -- 9. --resume refuses other sources by the footage of the videos it holds ---------------------------------
@pytest.fixture(scope="module")
def edges(s: Path, tmp_path_factory: pytest.TempPathFactory, hed_weights_path: Path) -> Path:
    store = tmp_path_factory.mktemp("edges") / "e.zarr"
    assert run(["-q", "edges", str(s / "Release"), "-o", str(store)]) == 0
    return store


def test_resume_refuses_other_footage(cli, tmp_path, s, s4, edges):
    work = tmp_path / "work"
    work.mkdir()
    resumed = shutil.copytree(edges, work / "er.zarr")
    before = _tree(work)
    _one_line_error(cli("-q", "edges", s4 / "Release", "-o", resumed, "--resume"), str(resumed), "'synth0000'", "other footage")
    _one_line_error(cli("-q", "edges", s / "Release" / "clips320H" / "synth0001.mp4", "-o", resumed, "--resume"), str(resumed), "'synth0000'", "not among")
    assert _tree(work) == before
    assert cli("-q", "edges", s / "Release", "-o", resumed, "--resume").code == 0  # its own sources: nothing to do


def test_align_resume_refuses_a_prediction_of_other_footage(cli, tmp_path, s4, pz):
    work = tmp_path / "work"
    work.mkdir()
    other = _pred(tmp_path / "p4.zarr", s4)
    assert cli("-q", "align", pz, "-o", work / "a.zarr").code == 0
    before = _tree(work)
    _one_line_error(cli("-q", "align", other, "-o", work / "a.zarr", "--resume"), str(work / "a.zarr"), "other footage")
    assert _tree(work) == before


# -- 10. score checks the ground truth's footage ---------------------------------------------------------------
def test_score_refuses_ground_truth_of_other_footage(cli, s4, pz):
    _one_line_error(cli("-q", "score", pz, "--gt", s4 / "Release"), str(pz), "other footage", "--ignore-footage")
    assert cli("-q", "score", pz, "--gt", s4 / "Release", "--ignore-footage").code == 0


# -- 11. the reader checks every array's length; writers never write what it rejects -------------------------
def test_an_array_shorter_than_frame_index_is_damage(cli, tmp_path, s):
    bad = tmp_path / "bad.zarr"
    with StoreWriter(bad, kind="pred", inputs={"sources": [str(s / "Release")], "split": "all"}) as writer:
        writer.write_video("synth0002", range(6), {"label": np.zeros((6, 48, 64), np.uint8)})
    group = zarr.open_group(zarr.storage.LocalStore(bad / "synth0002"), mode="r+")
    del group["label"]
    group.create_array("label", data=np.zeros((2, 48, 64), np.uint8), chunks=(1, 48, 64))
    out = tmp_path / "out"
    out.mkdir()
    before = _tree(tmp_path)
    for args in (["align", bad, "-o", out / "a.zarr"], ["info", bad], ["score", bad, "--gt", s / "Release"], ["show", bad, "-o", out / "x.png"]):
        _one_line_error(cli("-q", *args), str(bad), "'label'", "'synth0002'", "2 frames, its frame_index 6")
    assert _tree(tmp_path) == before


def test_a_writer_refuses_to_complete_a_partly_written_video(tmp_path):
    with pytest.raises(StoreError, match="'label' is not fully written"), StoreWriter(tmp_path / "p.zarr", kind="pred") as writer:
        video = writer.video("v", range(6), {"label": ((4, 4), np.uint8)})
        video.write("label", 0, np.zeros((2, 4, 4), np.uint8))
        writer.complete("v")
    assert _tree(tmp_path) == {}


# -- 12. ids outside A2D's ---------------------------------------------------------------------------------------
def test_score_refuses_ids_outside_a2d(cli, tmp_path, s):
    def foreign(video: str, maps: np.ndarray) -> np.ndarray:
        if video == "synth0002":
            maps[:, 0, :2] = (250, 14)
        return maps

    pred = _pred(tmp_path / "p.zarr", s, foreign)
    _one_line_error(_score(cli, pred, s), str(pred), "'synth0002'", "(14, 250)")


# -- 13. damaged metadata and chunks -------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["metadata", "chunk"])
def test_damaged_array_is_one_line(cli, tmp_path, s, damage):
    pred = _pred(tmp_path / "p.zarr", s)
    commands = [["score", pred, "--gt", s / "Release"], ["align", pred, "-o", tmp_path / "out" / "a.zarr"], ["show", pred, "-o", tmp_path / "out" / "x.png"]]
    if damage == "metadata":
        (pred / "synth0000" / "label" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array", ')
        commands.append(["info", pred])
    else:  # info reads no chunk of label
        chunk = pred / "synth0000" / "label" / "c" / "0" / "0" / "0"
        chunk.write_bytes(chunk.read_bytes()[:9])
    (tmp_path / "out").mkdir()
    before = _tree(tmp_path)
    for args in commands:
        _one_line_error(cli("-q", *args), str(pred), "'synth0000'", "damaged")
    assert _tree(tmp_path) == before


# -- 13, 14. a full disk: one line naming the output, nothing left behind, resumable again -------------------------
def test_a_full_disk_is_one_line_naming_the_output(cli, pz, full_disk):
    for name in ("a.zarr.zip", "d.zarr"):
        assert cli("-q", "align", pz, "-o", full_disk / name).code == 0
    _fill(full_disk)
    before = _tree(full_disk)
    for _ in range(2):  # a second try finds nothing half-unpacked
        for name in ("a.zarr.zip", "d.zarr"):
            _one_line_error(cli("-q", "align", pz, "-o", full_disk / name, "--resume"), str(full_disk / name), "No space left on device")
    _one_line_error(cli("-q", "align", pz, "-o", full_disk / "new.zarr"), str(full_disk / "new.zarr"), "No space left on device")
    assert _tree(full_disk) == before


# -- 14, 15. every error is one line; warnings obey -q; empty stdin; Ctrl-C -----------------------------------------
def test_a_name_with_a_newline_stays_one_line(cli, tmp_path):
    _one_line_error(cli("-q", "info", tmp_path / "a\nb.zarr"), "a\\nb.zarr: no such store")


def test_zarr_warnings_are_hidden_by_quiet(tmp_path, pz):
    foreign = Path(shutil.copyfile(pz, tmp_path / "f.zarr.zip"))
    with zipfile.ZipFile(foreign, "a") as archive:
        archive.writestr("synth0000/notes.txt", "a file zarr does not know")
    done = vscr_process("-q", "info", foreign)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()


def test_empty_stdin_says_there_was_no_input():
    done = vscr_process("info", "-", input=b"")
    assert done.returncode == 1 and done.stderr.decode().splitlines() == ["vscr: error: -: no input on stdin (did the command before the pipe fail?)"]


@pytest.mark.parametrize("becomes", [ValueError, StoreError, OSError])
def test_ctrl_c_that_a_library_turns_into_another_error_is_still_an_interruption(monkeypatch, capfd, becomes):
    """safetensors, interrupted mid-load, raises ``ValueError: could not determine the shape of object
    type 'torch.storage.UntypedStorage'``: the run must still end as interrupted, in one line."""

    def loading(**_: object) -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)  # the handler raises here
        except KeyboardInterrupt:
            raise becomes("could not determine the shape of object type 'torch.storage.UntypedStorage'") from None

    monkeypatch.setattr("vscr_cli.cli.app", loading)
    assert run(["info", "x.zarr"]) == 130
    assert capfd.readouterr().err.splitlines() == ["vscr: interrupted"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, s, hed_weights_path):
    target = tmp_path / "x.zarr"
    process = subprocess.Popen([sys.executable, "-m", "vscr_cli", "-q", "edges", str(s / "Release"), "-o", str(target)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (tmp_path / ".x.zarr.partial").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130 and stderr.decode().splitlines() == ["vscr: interrupted"], stderr.decode()
    assert not target.exists()
