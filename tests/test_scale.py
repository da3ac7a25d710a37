"""Scale-out: Dask workers and shards give the single-process store; output locks; real SIGKILLs."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest
import safetensors.torch
import torch

from vscr_cli.errors import StoreError
from vscr_cli.settings.run import Shard
from vscr_cli.store import OutputLock, StoreWriter, open_store

from .conftest import REPO, TINY_TRAIN

EDGES = ["--max-frames", "3", "--precision", "fp32"]


def assert_same_store(a_location, b_location):
    """Every array of every video (values, dtype, chunks), attrs and the record but created_by."""
    with open_store(a_location) as a, open_store(b_location) as b:
        first, second = a.record.to_json(), b.record.to_json()
        first.pop("created_by"), second.pop("created_by")
        assert first == second
        for video in a.videos:
            assert a.arrays(video) == b.arrays(video) and a.video_attrs(video) == b.video_attrs(video)
            np.testing.assert_array_equal(a.frame_index(video), b.frame_index(video))
            for name in a.arrays(video):
                x, y = a.array(video, name), b.array(video, name)
                assert (x.dtype, x.chunks) == (y.dtype, y.chunks)
                np.testing.assert_array_equal(x[:], y[:], err_msg=f"{video}/{name}")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Torch on one thread here, as in each Dask worker: bit-identical results need the same
    summation order (docs/scale.md); child processes get OMP_NUM_THREADS=1 (see _vscr)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference(synth, tmp_path_factory, hed_weights_path):
    """The single-process edges store every other way of running must reproduce."""
    out = tmp_path_factory.mktemp("reference") / "edges.zarr"
    from vscr_cli.cli import run

    assert run(["-q", "edges", str(synth.root), *EDGES, "-o", str(out)]) == 0
    return out


def _vscr(*args):
    return subprocess.Popen([sys.executable, "-m", "vscr_cli", "-q", *map(str, args)], cwd=REPO, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})


def _kill_when(process, ready, timeout=120):
    """SIGKILL ``process`` as soon as ``ready()`` holds; fails if it ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"finished before it could be killed: {process.stderr.read().decode()[-800:]}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL


def _completed(partial):
    try:
        with open_store(partial) as store:
            return store.videos
    except (StoreError, ValueError, OSError):  # not created yet, or its record is being rewritten
        return []


def test_shard_positions():
    assert Shard.parse("1/3").select(list("abcdefg")) == ["b", "e"]
    for bad in ("3/3", "-1/2", "1", "a/b"):
        with pytest.raises(ValueError):
            Shard.parse(bad)


def test_dask_workers_and_merged_shards_equal_one_process(cli, synth, tmp_path, reference):
    out = tmp_path / "dask.zarr.zip"
    environment = dict(os.environ)
    done = cli("-q", "edges", synth.root, *EDGES, "--scheduler", "local:2", "-o", out)
    assert done.code == 0, done.stderr
    assert_same_store(reference, out)
    assert dict(os.environ) == environment  # Dask's OMP_NUM_THREADS=1 for its workers stays theirs
    shards = [tmp_path / f"edges-{i}of2.zarr" for i in range(2)]
    for i, shard in enumerate(shards):
        assert cli("-q", "edges", synth.root, *EDGES, "--shard", f"{i}/2", "-o", shard).code == 0
    with open_store(shards[1]) as store:
        assert store.videos == [v.video_id for v in synth.summary.videos][1::2]
        assert store.record.params["shard"] == {"index": 1, "count": 2, "videos": store.videos}
    merged = tmp_path / "merged.zarr"
    done = cli("-q", "merge", *reversed(shards), "-o", merged)
    assert done.code == 0, done.stderr
    assert_same_store(reference, merged)
    for args, message in (
        ([shards[0]], "missing shard(s) 1/2"),
        ([shards[0], shards[0]], "shard 0/2 is also given"),
        ([shards[0], reference], "not a shard"),
    ):
        failed = cli("merge", *args, "-o", tmp_path / "bad.zarr")
        assert failed.code == 1 and message in failed.stderr
    assert cli("-q", "edges", synth.root, "--max-frames", "2", "--precision", "bf16", "--shard", "1/2", "-o", tmp_path / "other.zarr").code == 0  # named: auto is fp32 on some CPUs
    mixed = cli("merge", shards[0], tmp_path / "other.zarr", "-o", tmp_path / "bad.zarr")
    assert mixed.code == 1 and "other parameters" in mixed.stderr and "(precision, selection)" in mixed.stderr


def test_dask_predict_equals_one_process(cli, trained, synth, tmp_path):
    args = ["predict", synth.root, "-m", trained.model, "--max-frames", "2", "--split", "test", "--prob", "--precision", "fp32"]
    assert cli("-q", *args, "-o", tmp_path / "one.zarr").code == 0
    done = cli("-q", *args, "--scheduler", "local:2", "-o", tmp_path / "dask.zarr")
    assert done.code == 0, done.stderr
    assert_same_store(tmp_path / "one.zarr", tmp_path / "dask.zarr")


def test_concurrent_writers_are_refused(cli, trained, synth, tmp_path):
    target = tmp_path / "e.zarr"
    with StoreWriter(target, kind="edges") as writer:
        with pytest.raises(StoreError, match=r"e.zarr: another vscr run is writing this output \(lock .*\.e\.zarr\.lock\)"):
            StoreWriter(target, kind="edges", resume=True).__enter__()
        busy = cli("edges", synth.root, "-o", target, "--resume")
        assert busy.code == 1 and "another vscr run is writing this output" in busy.stderr
        writer.write_video("v", [0], {"edge": np.zeros((1, 2, 2), np.uint8)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.zarr"]  # the lock file goes with the lock
    model = tmp_path / "model"
    with OutputLock(model):
        busy = cli("train", "--edges", trained.edges, "--cam", trained.cam, "-o", model, *TINY_TRAIN)
        assert busy.code == 1 and "model: another vscr run is writing this output" in busy.stderr


def test_sigkilled_edges_run_resumes_to_the_same_store(cli, synth, tmp_path, reference):
    out = tmp_path / "edges.zarr"
    partial = tmp_path / ".edges.zarr.partial"
    _kill_when(_vscr("edges", synth.root, *EDGES, "-o", out), lambda: len(_completed(partial)) >= 1)
    assert not out.exists()
    with open_store(partial) as store, open_store(reference) as whole:
        assert 1 <= len(store.videos) < len(whole.videos)
        for video in store.videos:  # what the record calls complete is complete
            for name in whole.arrays(video):
                np.testing.assert_array_equal(store.read(video, name), whole.read(video, name))
    done = cli("-q", "edges", synth.root, *EDGES, "-o", out, "--resume")
    assert done.code == 0, done.stderr
    assert_same_store(reference, out)


def test_a_killed_dask_worker_is_replaced(synth, tmp_path, reference):
    out = tmp_path / "edges.zarr"
    process = _vscr("edges", synth.root, *EDGES, "--scheduler", "local:2", "-o", out)
    partial = tmp_path / ".edges.zarr.partial"
    deadline = time.monotonic() + 120
    while len(_completed(partial)) < 1:
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    workers = [p for p in psutil.Process(process.pid).children() if "multiprocessing" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]
    assert workers
    workers[0].kill()
    assert process.wait(timeout=180) == 0, process.stderr.read().decode()[-2000:]
    assert_same_store(reference, out)


def test_sigkilled_training_resumes_to_the_same_weights(cli, trained, tmp_path):
    config = tmp_path / "train.toml"
    config.write_text("checkpoint_every = 2\n")
    args = ["--edges", trained.edges, "--cam", trained.cam, "--config", config, *TINY_TRAIN, "--iterations", "8"]
    assert cli("-q", "train", *args, "-o", tmp_path / "whole").code == 0
    parts = tmp_path / "parts"
    _kill_when(_vscr("train", *args, "-o", parts), (tmp_path / ".parts.partial" / "checkpoint.pt").is_file)  # a new run trains beside its folder
    assert not parts.exists()
    done = cli("-q", "train", *args, "-o", parts, "--resume")
    assert done.code == 0, done.stderr
    a = safetensors.torch.load_file(tmp_path / "whole" / "model.safetensors")
    b = safetensors.torch.load_file(parts / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
