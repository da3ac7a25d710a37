import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import zarr

from vscr_cli.errors import StoreError, VscrError
from vscr_cli.options import resolve_output
from vscr_cli.store import NAMESPACE, StoreWriter, check_same_frames, file_output, folder_output, mark_output, open_store, output_kind, output_record

from .conftest import REPO


def _edge_video(seed: int, frames: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "edge": rng.integers(0, 255, (frames, 6, 9), dtype=np.uint8),
        "segments": rng.integers(0, 5, (frames, 6, 9)).astype(np.int32),
    }


@pytest.mark.parametrize("name", ["out.zarr", "out.zarr.zip"])
def test_round_trip(tmp_path, name):
    target = tmp_path / name
    data = {f"v{i}": _edge_video(i) for i in range(3)}
    with StoreWriter(target, kind="edges", params={"threshold": 0.4}, inputs={"sources": ["a"]}, argv=["vscr", "edges"]) as writer:
        for video_id, arrays in data.items():
            writer.write_video(video_id, [0, 5, 10], arrays, attrs={"fps": 24})
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary left behind
    with open_store(target, "edges") as store:
        assert store.videos == ["v0", "v1", "v2"]
        assert store.record.params == {"threshold": 0.4}
        assert store.record.created_by["argv"] == ["vscr", "edges"]
        assert store.video_attrs("v1") == {"fps": 24}
        for video_id, arrays in data.items():
            assert store.frame_index(video_id).tolist() == [0, 5, 10]
            for key, array in arrays.items():
                np.testing.assert_array_equal(store.read(video_id, key), array)
                assert store.array(video_id, key).chunks == (1, 6, 9)


def test_pipe_through_a_real_shell(tmp_path):
    writer = textwrap.dedent(
        """
        import numpy as np
        from vscr_cli.store import StoreWriter
        with StoreWriter(None, kind="pred", params={"p": 1}) as w:
            w.write_video("clip", [0, 1], {"label": np.full((2, 4, 4), 77, np.uint8)})
        """
    )
    script = tmp_path / "writer.py"
    script.write_text(writer)
    command = f"{sys.executable} {script} | {sys.executable} -m vscr_cli info - --json"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout)
    assert facts["kind"] == "pred" and facts["location"] == "<stdin>"
    assert facts["videos"] == [{"video": "clip", "frames": 2, "arrays": {"label": {"shape": [2, 4, 4], "dtype": "uint8"}}}]


def test_crash_leaves_no_store_and_resume_completes(tmp_path):
    target = tmp_path / "e.zarr"
    crash = textwrap.dedent(
        f"""
        import os, numpy as np
        from vscr_cli.store import StoreWriter
        with StoreWriter({str(target)!r}, kind="edges", params={{"t": 1}}) as w:
            for i in range(2):
                w.write_video(f"v{{i}}", [0, 1, 2], {{"edge": np.full((3, 6, 9), i, np.uint8)}})
            video = w.video("v2", [0, 1, 2], {{"edge": ((6, 9), "uint8")}})
            video.write("edge", 0, np.full((1, 6, 9), 2, np.uint8))
            os._exit(9)  # killed mid-video
        """
    )
    done = subprocess.run([sys.executable, "-c", crash], cwd=REPO)
    assert done.returncode == 9
    assert not target.exists()
    with pytest.raises(StoreError, match="no such store"):
        open_store(target)
    with StoreWriter(target, kind="edges", params={"t": 1}, resume=True) as writer:
        assert writer.completed == {"v0", "v1"}
        for i in range(3):
            if f"v{i}" not in writer.completed:
                writer.write_video(f"v{i}", [0, 1, 2], {"edge": np.full((3, 6, 9), 10 + i, np.uint8)})
    with open_store(target) as store:
        assert store.videos == ["v0", "v1", "v2"]
        assert store.read("v0", "edge").max() == 0 and store.read("v2", "edge").min() == 12


def test_exception_inside_writer_keeps_final_name_absent(tmp_path):
    target = tmp_path / "e.zarr.zip"
    with pytest.raises(RuntimeError):
        with StoreWriter(target, kind="edges") as writer:
            writer.write_video("v0", [0], {"edge": np.zeros((1, 2, 2), np.uint8)})
            raise RuntimeError("boom")
    assert not target.exists()


def test_resume_refuses_other_parameters_and_kind(tmp_path):
    target = tmp_path / "e.zarr"
    with pytest.raises(RuntimeError):
        with StoreWriter(target, kind="edges", params={"t": 1}) as writer:
            writer.write_video("v0", [0], {"edge": np.zeros((1, 2, 2), np.uint8)})
            raise RuntimeError("interrupted")
    with pytest.raises(StoreError, match="different parameters \\(t\\)"):
        with StoreWriter(target, kind="edges", params={"t": 2}, resume=True):
            pass
    with pytest.raises(StoreError, match="cannot resume an edges store as cam"):
        with StoreWriter(target, kind="cam", params={"t": 1}, resume=True):
            pass


def test_resume_extends_a_finished_zip_store(tmp_path):
    target = tmp_path / "e.zarr.zip"
    with StoreWriter(target, kind="edges") as writer:
        writer.write_video("v0", [0], {"edge": np.ones((1, 2, 2), np.uint8)})
    with StoreWriter(target, kind="edges", resume=True) as writer:
        assert writer.completed == {"v0"}
        writer.write_video("v1", [0], {"edge": np.ones((1, 2, 2), np.uint8)})
    with open_store(target) as store:
        assert store.videos == ["v0", "v1"]


def test_refuses_to_overwrite_unless_asked(tmp_path):
    target = tmp_path / "e.zarr"
    for value in (1, 2):
        if value == 2:
            with pytest.raises(StoreError, match="output exists"):
                StoreWriter(target, kind="edges").__enter__()
        with StoreWriter(target, kind="edges", overwrite=value == 2) as writer:
            writer.write_video("v", [0], {"edge": np.full((1, 2, 2), value, np.uint8)})
    with open_store(target) as store:
        assert store.read("v", "edge").max() == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.zarr"]


def test_reader_errors_are_clear(tmp_path):
    target = tmp_path / "e.zarr"
    with StoreWriter(target, kind="edges") as writer:
        writer.write_video("v", [0, 1], {"edge": np.zeros((2, 2, 2), np.uint8)})
    with pytest.raises(StoreError, match="is an edges store, expected cam"):
        open_store(target, "cam")
    with open_store(target) as store:
        with pytest.raises(StoreError, match="no video 'w'"):
            store.frame_index("w")
        with pytest.raises(StoreError, match="has no array 'pseudo'"):
            store.array("v", "pseudo")
    plain = tmp_path / "plain.zarr"
    zarr.open_group(plain, mode="w")
    with pytest.raises(StoreError, match="not a vscr store"):
        open_store(plain)
    future = tmp_path / "future.zarr"
    zarr.open_group(future, mode="w", attributes={NAMESPACE: {"schema": "vscr-store/99", "kind": "edges"}})
    with pytest.raises(StoreError, match="unknown store schema 'vscr-store/99'"):
        open_store(future)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not a store"):
        open_store(text)


def test_frame_mismatch_between_stores(tmp_path):
    def make(name, frames):
        with StoreWriter(tmp_path / name, kind="edges") as writer:
            for video_id, index in frames.items():
                writer.write_video(video_id, index, {"edge": np.zeros((len(index), 2, 2), np.uint8)})
        return open_store(tmp_path / name)

    a = make("a.zarr", {"v": [0, 2]})
    check_same_frames(a, make("b.zarr", {"v": [0, 2]}))
    with pytest.raises(StoreError, match="disagree on the frames of video 'v'"):
        check_same_frames(a, make("c.zarr", {"v": [0, 3]}))
    with pytest.raises(StoreError, match="hold different videos .*only in .*d.zarr: w"):
        check_same_frames(a, make("d.zarr", {"v": [0, 2], "w": [0]}))


def test_binary_output_to_a_terminal_is_refused(monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    with pytest.raises(VscrError, match="refusing to write a binary store to a terminal"):
        resolve_output(None)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert resolve_output(None) is None and str(resolve_output("x.zarr")) == "x.zarr"


# -- the output primitives every other output goes through ------------------------------------------------
def test_folder_output_moves_a_finished_folder_into_place_or_leaves_the_target(tmp_path):
    target = tmp_path / "m"
    with folder_output(target, "model") as staging:
        (staging / "weights.bin").write_bytes(b"1")
    assert output_kind(target) == "model" and (target / "weights.bin").read_bytes() == b"1"
    with pytest.raises(RuntimeError), folder_output(target, "model", overwrite=True) as staging:
        (staging / "weights.bin").write_bytes(b"2")
        raise RuntimeError("failed half-way")
    assert (target / "weights.bin").read_bytes() == b"1" and sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    with pytest.raises(StoreError, match="is a vscr model folder, not a vscr synth dataset"), folder_output(target, "synth", overwrite=True):
        pass
    (tmp_path / ".m.partial").mkdir()  # an earlier run's, crashed before it wrote a thing
    with folder_output(target, "model", overwrite=True) as staging:
        (staging / "weights.bin").write_bytes(b"3")
    assert (target / "weights.bin").read_bytes() == b"3" and sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_folder_output_keeps_an_interrupted_runs_work_without_overwrite(tmp_path):
    """An interrupted ``vscr train -o m`` leaves its checkpoint in .m.partial; ``vscr refine -o m``
    (another model writer) must not discard it unasked."""
    staging = tmp_path / ".m.partial"
    staging.mkdir()
    mark_output(staging, "model")
    (staging / "checkpoint.pt").write_bytes(b"weeks of training")
    with pytest.raises(StoreError, match=r"an interrupted run left its work in .*\.m\.partial .*--overwrite"), folder_output(tmp_path / "m", "model"):
        pass
    assert (staging / "checkpoint.pt").read_bytes() == b"weeks of training" and not (tmp_path / "m").exists()
    with folder_output(tmp_path / "m", "model", overwrite=True) as fresh:
        (fresh / "weights.bin").write_bytes(b"1")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["vscr-output.json", "weights.bin"]


def test_folder_output_refuses_a_staging_folder_it_did_not_make(tmp_path):
    (tmp_path / ".m.partial").mkdir()
    (tmp_path / ".m.partial" / "mine.txt").write_text("not vscr's")
    with pytest.raises(StoreError, match="not a staging folder vscr made"), folder_output(tmp_path / "m", "model"):
        pass
    assert (tmp_path / ".m.partial" / "mine.txt").read_text() == "not vscr's"


def test_file_output_replaces_only_its_own_kind(tmp_path):
    report = tmp_path / "r.json"
    data = json.dumps({"vscr_output": output_record("scores"), "x": 1}).encode()
    assert file_output(report, "scores", data) == report and output_kind(report) == "scores"
    with pytest.raises(StoreError, match="output exists"):
        file_output(report, "scores", data)
    with pytest.raises(StoreError, match="is a vscr score report, not a vscr contact sheet"):
        file_output(report, "sheet", b"", overwrite=True)
    (tmp_path / "notes.json").write_text('{"x": 1}')
    with pytest.raises(StoreError, match="a file that vscr did not make"):
        file_output(tmp_path / "notes.json", "scores", data, overwrite=True)
    assert file_output(report, "scores", data.replace(b'"x": 1', b'"x": 2'), overwrite=True) == report
    assert json.loads(report.read_text())["x"] == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["notes.json", "r.json"]
