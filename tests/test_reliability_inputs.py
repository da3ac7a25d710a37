"""Issue #35, the inputs: a decompression bomb, two synth runs into one folder, tag CSV and
annotation quirks, mixed frame sizes and text that is not UTF-8 are each one line
`vscr: error: FILE: problem`, exit 1, no traceback, and every folder the command touches is
left as it was (docs/store.md, Reliability)."""

from __future__ import annotations

import codecs
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from vscr_cli.datasets.synth import SynthConfig, synthesize
from vscr_cli.store import open_store

from .conftest import Result, vscr_process
from .test_reliability import _frames, _one_line_error

#: The issue's reproduction set: `vscr synth s --videos 4 --frames 6 --height 48 --width 64`.
TINY = SynthConfig(videos=4, frames=6, height=48, width=64)
#: Address space for a real `vscr` process: torch and PyAV need about 5 GB of it just to import.
MEMORY_LIMIT = 6 << 30


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Everything under ``folder``: each file's bytes, each folder as None (so a left-over empty one shows)."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "s"
    synthesize(root, TINY)
    return root


@pytest.fixture
def data(tmp_path: Path, tiny_set: Path) -> Path:
    """A copy of the tiny set to damage, and an empty ``out`` folder beside it."""
    (tmp_path / "out").mkdir()
    return Path(shutil.copytree(tiny_set, tmp_path / "s"))


def _refused(result: Result, tmp_path: Path, before: dict[str, bytes | None], *fragments: str) -> None:
    """One line naming ``fragments``, exit 1, and ``tmp_path`` (inputs and ``out``) exactly as ``before``."""
    _one_line_error(result, *fragments)
    assert _snapshot(tmp_path) == before


# -- 6. a decompression bomb ---------------------------------------------------------------------------
def _png_bomb(path: Path, width: int = 12000, height: int = 12000) -> Path:
    """A ~200-byte PNG declaring ``width`` x ``height`` RGB pixels (its data stops after 4 rows; Pillow decodes the rest as black)."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (1 + 3 * width) * 4, 9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def test_decompression_bomb_is_refused_from_its_header_under_a_memory_limit(tmp_path, hed_weights_path):
    bomb = _png_bomb(tmp_path / "v" / "bomb" / "00000.png")
    assert bomb.stat().st_size < 300
    (tmp_path / "out").mkdir()
    before = _snapshot(tmp_path)
    done = vscr_process("-q", "edges", bomb.parent, "-o", tmp_path / "out" / "e.zarr", preexec_fn=_limit_memory, text=True, timeout=300)
    _refused(Result(done.returncode, done.stdout, done.stderr), tmp_path, before, str(bomb), "12000x12000", "VSCR_MAX_PIXELS")


def test_pixel_limit_covers_video_files_and_can_be_raised(cli, tmp_path, data, monkeypatch, hed_weights_path):
    clip = data / "Release" / "clips320H" / "synth0000.mp4"  # 64x48: 3072 pixels
    before = _snapshot(tmp_path)
    monkeypatch.setenv("VSCR_MAX_PIXELS", "3071")
    _refused(cli("-q", "edges", clip, "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, str(clip), "64x48", "limit of 3071")
    monkeypatch.setenv("VSCR_MAX_PIXELS", "lots")
    _refused(cli("-q", "edges", clip, "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, "VSCR_MAX_PIXELS='lots'")
    monkeypatch.setenv("VSCR_MAX_PIXELS", "3072")
    _refused(cli("-q", "--max-pixels", "3071", "edges", clip, "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, str(clip), "limit of 3071")  # the option wins
    monkeypatch.setenv("VSCR_MAX_PIXELS", "3071")
    assert cli("-q", "--max-pixels", "3072", "edges", clip, "-o", tmp_path / "out" / "e.zarr").code == 0


def test_set_max_pixels_sets_the_limit_for_this_process_and_its_workers(tmp_path, monkeypatch):
    from vscr_cli import video
    from vscr_cli.errors import SourceError

    frame = _frames(tmp_path / "clip", (40, 50), count=1) / "00000.png"
    monkeypatch.setenv("VSCR_MAX_PIXELS", "1999")  # restored after the test, whatever set_max_pixels does
    with pytest.raises(SourceError, match="declares 50x40 pixels, more than the limit of 1999"):
        video.read_image(frame)
    video.set_max_pixels(2000)
    assert video.read_image(frame).shape == (40, 50, 3)
    worker = subprocess.run([sys.executable, "-c", "from vscr_cli.video import max_pixels; print(max_pixels())"], capture_output=True, text=True)
    assert worker.stdout.strip() == "2000"
    monkeypatch.delenv("VSCR_MAX_PIXELS")
    assert video.max_pixels() == video.DEFAULT_MAX_PIXELS == 40_000_000


# -- 7. two synth runs into one folder --------------------------------------------------------------------
def test_a_second_synth_into_the_same_folder_is_refused_while_the_first_writes(tmp_path):
    target = tmp_path / "s"
    args = ["-q", "synth", str(target), "--videos", "12", "--frames", "6", "--height", "48", "--width", "64"]
    first = subprocess.Popen([sys.executable, "-m", "vscr_cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    clips = tmp_path / ".s.partial" / "Release" / "clips320H"
    deadline = time.monotonic() + 120
    while not any(clips.glob("*.mp4")):  # the first run is writing: freeze it there
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        during = _snapshot(tmp_path)
        second = vscr_process(*args, text=True, timeout=120)
        after_second = _snapshot(tmp_path)
    finally:
        first.send_signal(signal.SIGCONT)
    _, first_stderr = first.communicate(timeout=120)
    _one_line_error(Result(second.returncode, second.stdout, second.stderr), str(target), "another vscr run is writing this output")
    assert after_second == during
    assert first.returncode == 0, first_stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no lock, no staging folder
    reference = tmp_path.parent / f"{tmp_path.name}-reference"
    synthesize(reference, SynthConfig(videos=12, frames=6, height=48, width=64))
    try:
        assert _snapshot(target) == _snapshot(reference)  # all 12 videos, exactly as one run writes them
    finally:
        shutil.rmtree(reference)


# -- 12. tag CSV and annotation quirks ----------------------------------------------------------------------
def test_byte_order_marks_are_accepted_in_videoset_and_tags(cli, tmp_path, data, hed_weights_path, trained, synth):
    videoset = data / "Release" / "videoset.csv"  # as a spreadsheet saves it
    videoset.write_bytes(codecs.BOM_UTF8 + videoset.read_bytes())
    done = cli("-q", "edges", data, "-o", tmp_path / "out" / "e.zarr")
    assert done.code == 0, done.stderr
    with open_store(tmp_path / "out" / "e.zarr", "edges") as store:
        assert store.record.videos == [f"synth000{i}" for i in range(4)]
    tags = tmp_path / "tags.csv"  # the tags of the session's synthetic set (the model's), saved by a spreadsheet
    tags.write_bytes(codecs.BOM_UTF8 + (synth.root / "tags.csv").read_bytes())
    done = cli("-q", "predict", synth.root, "--split", "test", "-m", trained.model, "--tags", tags, "-o", tmp_path / "out" / "p.zarr")
    assert done.code == 0, done.stderr
    with open_store(tmp_path / "out" / "p.zarr", "pred") as store:
        assert store.record.videos == [v.video_id for v in synth.summary.videos if v.split == "test"]


def test_a_tags_row_without_a_comma_is_one_line(cli, tmp_path, data):
    tags = data / "tags.csv"
    rows = tags.read_text().splitlines()
    rows[3] = rows[3].split(",")[0]  # `synth0002`: its tags forgotten, not "no actor"
    tags.write_text("\n".join(rows) + "\n")
    before = _snapshot(tmp_path)
    done = cli("-q", "cam", data, "--tags", tags, "-o", tmp_path / "out" / "c.zarr", "--epochs", "1", "--fit-frames", "4")
    _refused(done, tmp_path, before, f"{tags}:4", "expected 2 fields", "found 1")


def test_a_video_listed_twice_in_videoset_is_one_line(cli, tmp_path, data, hed_weights_path):
    videoset = data / "Release" / "videoset.csv"
    rows = videoset.read_text().splitlines()
    videoset.write_text("\n".join([*rows, rows[1]]) + "\n")
    before = _snapshot(tmp_path)
    _refused(cli("-q", "edges", data, "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, f"{videoset}:5", "'synth0001' is listed twice")


def test_an_annotation_numbered_from_zero_is_one_line(cli, tmp_path, data, hed_weights_path):
    folder = data / "Release" / "Annotations" / "mat" / "synth0000"
    zero = folder / "00000.mat"
    shutil.copy(next(folder.glob("*.mat")), zero)
    before = _snapshot(tmp_path)
    _refused(cli("-q", "edges", data, "--annotated-only", "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, str(zero), "from 1")


# -- 13. mixed frame sizes, text that is not UTF-8 ------------------------------------------------------------
@pytest.mark.parametrize("command", ["edges", "cam", "predict"])
def test_mixed_frame_sizes_in_a_frame_folder_are_one_line(cli, tmp_path, command, hed_weights_path, request):
    clip = _frames(tmp_path / "clip", (48, 64), count=4)
    odd = clip / "00002.png"
    PIL.Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(odd)
    (tmp_path / "tags.csv").write_text("video,tags\nclip,adult-walking\n")
    (tmp_path / "out").mkdir()
    before = _snapshot(tmp_path)
    extra: list[str | Path] = []
    if command == "cam":
        extra = ["--tags", tmp_path / "tags.csv", "--epochs", "1", "--fit-frames", "4"]
    elif command == "predict":
        extra = ["-m", request.getfixturevalue("trained").model]
    _refused(cli("-q", command, clip, "-o", tmp_path / "out" / "x.zarr", *extra), tmp_path, before, str(odd), "64x40", "64x48")


def test_text_that_is_not_utf8_is_one_line(cli, tmp_path, data, hed_weights_path):
    tags = data / "tags.csv"
    tags.write_bytes(tags.read_bytes().replace(b"synth0003", "vidéo".encode("latin-1")))
    videoset = data / "Release" / "videoset.csv"
    listing = tmp_path / "sources.txt"
    listing.write_bytes("s/Release/clips320H/synth0000.mp4\n# vidéo\n".encode("latin-1"))
    before = _snapshot(tmp_path)
    done = cli("-q", "cam", data, "--tags", tags, "-o", tmp_path / "out" / "c.zarr", "--epochs", "1", "--fit-frames", "4")
    _refused(done, tmp_path, before, f"{tags}:5", "not UTF-8")
    _refused(cli("-q", "edges", listing, "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, f"{listing}:2", "not UTF-8")
    videoset.write_bytes(videoset.read_bytes().replace(b"synth0003", "vidéo".encode("latin-1")))
    before = _snapshot(tmp_path)
    _refused(cli("-q", "edges", data, "-o", tmp_path / "out" / "e.zarr"), tmp_path, before, f"{videoset}:4", "not UTF-8")
