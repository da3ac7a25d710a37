import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch

from vscr_cli import labels, weights
from vscr_cli.console import duration
from vscr_cli.core.flow import flow_stack
from vscr_cli.core.models.motion import clip_frames
from vscr_cli.errors import VscrError
from vscr_cli.model_folders import load_model
from vscr_cli.settings.train import TrainConfig, resolve
from vscr_cli.stages.train import FrameCache, SampleReader, batch_slots, build_frame_cache, crop_position, open_training_inputs, preset_for, train

from .conftest import REPO, TINY_TRAIN


def _metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_training_writes_a_loadable_model_with_finite_terms(trained):
    logs = _metrics(trained.model)
    assert [row["iteration"] for row in logs] == [5, 6]
    for row in logs:
        assert all(np.isfinite(row[k]) for k in ("total", "edge", "cam", "tag", "classifier", "action"))
    model, config, record = load_model(trained.model, torch.device("cpu"))
    assert config.crop == 32 and config.motion == "flow" and record["label_space"]["class_ids"][:2] == [0, 11]
    assert config.action_head and model.action_head is not None and model.action_head.out_channels == labels.NUM_ACTIONS
    assert record["frame_height"] is None and record["inputs"]["edges"] == str(trained.edges)


def _stage_run(trained, folder, iterations, stop_at=None, resume=False, crop=32, **options):
    config = resolve("cpu", flags={"iterations": iterations, "batch_size": 4, "crop": crop, "checkpoint_every": 4, "log_every": 1, **options})
    folder.mkdir(exist_ok=True)

    def interrupt(log):
        if log.iteration == stop_at:
            raise KeyboardInterrupt

    with open_training_inputs(str(trained.edges), str(trained.cam), None, None, 1.0) as data:
        cache = build_frame_cache(data, config, folder)
        backbone = weights.load_state_dict("efficientnet-lite0-imagenet")
        try:
            train(data, cache, config, folder, torch.device("cpu"), None, backbone, resume=folder / "checkpoint.pt" if resume else None, on_step=interrupt)
        except KeyboardInterrupt:
            pass
    return config


def test_total_loss_falls(trained, tmp_path):
    _stage_run(trained, tmp_path, 40, crop=48)
    losses = [row["total"] for row in _metrics(tmp_path)]
    assert np.median(losses[-10:]) < 0.75 * np.median(losses[:10])
    action = [row["action"] for row in _metrics(tmp_path)]
    assert np.median(action[-10:]) < 0.75 * np.median(action[:10])  # the action head learns the clips' action tags


def test_a_model_saved_before_the_action_head_loads_and_predicts_by_the_pooled_decision(cli, trained, synth, tmp_path):
    old = tmp_path / "old-model"
    shutil.copytree(trained.model, old)
    record = json.loads((old / "config.json").read_text())
    del record["train"]["action_head"], record["train"]["action_weight"]
    (old / "config.json").write_text(json.dumps(record))
    state = safetensors.torch.load_file(old / "model.safetensors")
    safetensors.torch.save_file({k: v for k, v in state.items() if not k.startswith("action_head.")}, old / "model.safetensors")
    model, config, _ = load_model(old, torch.device("cpu"))
    assert not config.action_head and model.action_head is None
    result = cli("-q", "predict", synth.root, "-m", old, "--split", "test", "--max-frames", "2", "--no-crf", "-o", tmp_path / "pred.zarr")
    assert result.code == 0, result.stderr


@pytest.mark.parametrize("tag_memory", [False, True])
def test_resume_equals_an_uninterrupted_run(trained, tmp_path, tag_memory):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    _stage_run(trained, whole, 12, tag_memory=tag_memory)
    _stage_run(trained, parts, 12, stop_at=6, tag_memory=tag_memory)  # interrupted after the checkpoint at 4
    assert not (parts / "model.safetensors").exists()
    banks = torch.load(parts / "checkpoint.pt", weights_only=True)
    assert len(banks["memory"]["labels"]) > 0
    assert banks["tag_memory"]["labels"].shape[1:] == (len(labels.VALID_IDS),) if tag_memory else len(banks["tag_memory"]["labels"]) == 0
    _stage_run(trained, parts, 12, resume=True, tag_memory=tag_memory)
    a = safetensors.torch.load_file(whole / "model.safetensors")
    b = safetensors.torch.load_file(parts / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_cached_flow_is_the_clip_flow_of_whole_frames_cropped_and_flipped(trained, tmp_path):
    """The flows store holds each pair once; a sample's motion is the per-clip flow of the whole
    frames (the recompute path) in the sample's window, mirrored with x negated on a flip."""
    crop = 80  # frames are 64x96: windows padded in height, placed at random in width
    config = resolve("cpu", flags={"crop": crop, "crop_max_class_share": 1.0, "crop_share": 0.0})  # uniform windows at the stores' height, drawn below as the sample draws them
    with open_training_inputs(str(trained.edges), str(trained.cam), None, None, 1.0) as data:
        cache = build_frame_cache(data, config, tmp_path)
        assert build_frame_cache(data, config, tmp_path).rgb.videos == cache.rgb.videos  # resumes, nothing to redo
        reader = SampleReader(data, cache, config, config.architecture.mean_std)
        recompute = SampleReader(data, FrameCache(cache.rgb, None), config, config.architecture.mean_std)
        flips = set()
        for video, position in data.samples[::3]:
            entry = data.videos[video]
            pairs = list(zip(cache.flows.frame_index(entry.video_id).tolist(), cache.flows.read(entry.video_id, "second").tolist()))
            assert len(pairs) == len(set(pairs))
            frames = dict(zip(cache.rgb.frame_index(entry.video_id).tolist(), cache.rgb.read(entry.video_id, "rgb")))
            clip = clip_frames(int(entry.frame_index[position]), entry.total_frames, config.clip_length, config.clip_stride)
            whole = flow_stack([frames[f] for f in clip])  # (8, 64, 96)
            seed = [video, position]
            draw = np.random.default_rng(seed)  # the window and flip the sample draws
            top, left = (int(draw.integers(0, max(size - crop, 0) + 1)) for size in whole.shape[1:])
            flip = bool(draw.random() < 0.5)
            part = whole[:, top : top + crop, left : left + crop]
            expected = np.zeros((whole.shape[0], crop, crop), np.float32)
            expected[:, : part.shape[1], : part.shape[2]] = part
            if flip:
                expected = expected[:, :, ::-1] * np.array([-1, 1] * (len(clip) - 1), np.float32)[:, None, None]
            sample = reader.sample(video, position, np.random.default_rng(seed))
            np.testing.assert_array_equal(sample["motion"], expected)
            again = recompute.sample(video, position, np.random.default_rng(seed))
            for key in sample.keys() - {"motion"}:
                np.testing.assert_array_equal(sample[key], again[key], err_msg=key)
            flips.add(flip)
        assert flips == {False, True}


def test_scale_jitter_resizes_frame_flow_and_labels_alike(trained, tmp_path):
    """At scale 0.5 a 32-px sample is the 64-px window of the frame shrunk by two: the image is the
    mean of 2x2 blocks, the flow too with its displacements halved, labels the nearest pixel."""
    crop = 32  # a 64-px window: the whole height of the 64x96 frames, placed at random in width
    config = resolve("cpu", flags={"crop": crop, "scale_min": 0.5, "scale_max": 0.5, "crop_max_class_share": 1.0, "crop_share": 0.0})  # uniform windows at the stores' height
    mean, std = (np.array(v, np.float32) * 255 for v in config.architecture.mean_std)
    with open_training_inputs(str(trained.edges), str(trained.cam), None, None, 1.0) as data:
        cache = build_frame_cache(data, config, tmp_path)
        reader = SampleReader(data, cache, config, config.architecture.mean_std)
        checked_labels = 0
        for video, position in data.samples[::4]:
            entry = data.videos[video]
            frames = dict(zip(cache.rgb.frame_index(entry.video_id).tolist(), cache.rgb.read(entry.video_id, "rgb")))
            number = int(entry.frame_index[position])
            clip = clip_frames(number, entry.total_frames, config.clip_length, config.clip_stride)
            seed = [video, position]
            draw = np.random.default_rng(seed)
            assert draw.uniform(0.5, 0.5) == 0.5
            top, left = (int(draw.integers(0, max(size - 2 * crop, 0) + 1)) for size in frames[number].shape[:2])
            flip = bool(draw.random() < 0.5)

            def shrunk(array):  # (64, 64, ...) -> (32, 32, ...) means of 2x2 blocks, flipped like the sample
                blocks = array.reshape(crop, 2, crop, 2, *array.shape[2:]).mean(axis=(1, 3))
                return blocks[:, ::-1] if flip else blocks

            sample = reader.sample(video, position, np.random.default_rng(seed))
            image = sample["image"].transpose(1, 2, 0) * std + mean
            window = frames[number][top : top + 2 * crop, left : left + 2 * crop].astype(np.float32)
            np.testing.assert_allclose(image, shrunk(window), atol=0.51)  # uint8 rounding
            flow = flow_stack([frames[f] for f in clip])[:, top : top + 2 * crop, left : left + 2 * crop]
            expected = shrunk(flow.transpose(1, 2, 0)).transpose(2, 0, 1) * 0.5
            if flip:
                expected = expected * np.array([-1, 1] * (len(clip) - 1), np.float32)[:, None, None]
            np.testing.assert_allclose(sample["motion"], expected, atol=1e-4)
            if entry.labeled[position]:
                pseudo = data.cams.read(entry.video_id, "pseudo")[position][top + 1 : top + 2 * crop : 2, left + 1 : left + 2 * crop : 2]
                cam = labels.CLASS_INDEX[pseudo[:, ::-1] if flip else pseudo]
                np.testing.assert_array_equal(sample["cam"], np.where(cam == labels.IGNORE, -1, cam))
                checked_labels += 1
        assert checked_labels
    with pytest.raises(VscrError, match="scale-min"):
        resolve("cpu", flags={"scale_min": 1.5, "scale_max": 0.5})


def test_a_crop_share_trains_and_predicts_tall_frames_at_the_working_height(trained, tmp_path):
    """--crop-share 1 with 32-px crops: the 64x96 frames are cached, cropped and predicted at 32 rows
    (their edge segments and pseudo-labels shrunk alike by nearest neighbour), the labels written at 64."""
    from vscr_cli.stages.predict import load_predictor, network_outputs
    from vscr_cli.sources import discover

    config = _stage_run(trained, tmp_path, 2, crop=32, crop_share=1.0, crop_max_class_share=1.0)
    assert config.input_height == 32 and config.working_height(64) == 32 and config.working_height(24) == 24
    with open_training_inputs(str(trained.edges), str(trained.cam), None, None, 1.0) as data:
        cache = build_frame_cache(data, config, tmp_path)
        entry = data.videos[0]
        assert cache.rgb.read(entry.video_id, "rgb").shape[1:] == (32, 48, 3)
        reader = SampleReader(data, cache, config, config.architecture.mean_std)
        sample = reader.sample(0, 0, np.random.default_rng(0))
        assert sample["image"].shape == (3, 32, 32) and sample["cam"].shape == (32, 32)
        pseudo = data.cams.read(entry.video_id, "pseudo")[0]
        shrunk = labels.CLASS_INDEX[pseudo[1::2, 1::2]]  # the nearest of 2x2 blocks, the window the whole height
        assert sorted(np.unique(sample["cam"][sample["cam"] >= 0])) == sorted(np.unique(shrunk[shrunk != labels.IGNORE]))
        video = next(v for v in discover([str(data.edges.record.inputs["sources"][0])]) if v.video_id == entry.video_id)
    predictor = load_predictor(tmp_path, "", torch.device("cpu"), None)
    assert predictor.config.crop_share == 1.0
    batch = next(network_outputs(video, [0, 3], None, predictor, 2))
    assert batch.size == (64, 96) and batch.images.shape[1:3] == (32, 48) and batch.output.logits.shape[-2:] == (4, 6)
    with pytest.raises(VscrError, match="crop-share"):
        resolve("cpu", flags={"crop_share": 1.5})


def test_crops_per_frame_raise_the_iterations_by_the_training_frames_and_the_model_records_them(cli, trained, tmp_path):
    with open_training_inputs(str(trained.edges), str(trained.cam), None, None, 1.0) as data:
        frames = sum(len(v.frame_index) for v in data.videos)
    options = ["--iterations", "2", "--crops-per-frame", "2", "--set", "checkpoint_every=1", *TINY_TRAIN[4:], "--no-tensorboard"]
    done = cli("train", "--edges", trained.edges, "--cam", trained.cam, "-o", tmp_path / "model", *options)
    assert done.code == 0, done.stderr
    raised = round(2 * frames / 4)  # 2 crops a frame at batch 4, in whole intervals of 1
    assert raised > 2 and f"2 iterations raised to {raised}" in done.stderr
    recorded = json.loads((tmp_path / "model" / "config.json").read_text())["train"]
    assert (recorded["iterations"], recorded["crops_per_frame"]) == (raised, 2.0)
    assert [row["iteration"] for row in _metrics(tmp_path / "model")][-1] == raised
    again = cli("train", "--edges", trained.edges, "--cam", trained.cam, "-o", tmp_path / "model", *options, "--resume")
    assert again.code == 0, again.stderr  # the raised length is the one the checkpoint recorded
    assert [row["iteration"] for row in _metrics(tmp_path / "model")][-1] == raised


def test_crops_redrawn_at_a_class_share_hold_a_small_actor():
    """A 30x30 actor near the right of an 80x240 frame: about a third of uniform 40-px windows hold
    some of it; redrawn while one class holds more than 3/4 of the labelled pixels, most do."""
    pseudo = np.zeros((80, 240), np.uint8)
    pseudo[25:55, 190:220] = 34  # dog-running

    def share_with_actor(frame, share, draws=300):
        rng = np.random.default_rng(0)
        windows = [crop_position(frame, pseudo.shape, 40, share, rng) for _ in range(draws)]
        return np.mean([pseudo[top : top + 40, left : left + 40].any() for top, left in windows])

    assert share_with_actor(pseudo, 1.0) < 0.4
    assert share_with_actor(pseudo, 0.75) > 0.75
    # off, or an unlabelled frame (no pseudo-labels): one uniform draw, the generator used as before the option
    for frame, share in ((pseudo, 1.0), (None, 0.75)):
        expected = np.random.default_rng(3)
        first = (int(expected.integers(0, 41)), int(expected.integers(0, 201)))
        assert crop_position(frame, pseudo.shape, 40, share, np.random.default_rng(3)) == first
    with pytest.raises(VscrError, match="crop-max-class-share"):
        resolve("cpu", flags={"crop_max_class_share": 0.0})


def test_a_self_training_round_learns_from_the_predicted_labels(cli, trained, synth, tmp_path):
    """vscr predict --tags on the training frames, then vscr train --cam PRED: every video labeled
    (the untagged and multi-tag ones too), each sample's targets the predicted labels, never the CAM's."""
    pred = tmp_path / "round1.zarr"
    tags = synth.root / "tags.csv"
    assert cli("-q", "predict", synth.root, "--every", "3", "--tags", tags, "-m", trained.model, "-o", pred).code == 0
    untagged = cli("-q", "train", "--edges", trained.edges, "--cam", pred, "-o", tmp_path / "m", *TINY_TRAIN)
    assert untagged.code == 1 and "records no tags: pass --tags" in untagged.stderr
    result = cli("-q", "train", "--edges", trained.edges, "--cam", pred, "--tags", tags, "-o", tmp_path / "m", *TINY_TRAIN)
    assert result.code == 0, result.stderr
    config = resolve("cpu", flags={"crop": 64, "crop_max_class_share": 1.0, "crop_share": 0.0})  # windows as tall as the frames
    with open_training_inputs(str(trained.edges), str(pred), None, str(tags), 1.0) as data:
        assert all(video.labeled.all() for video in data.videos)
        (tmp_path / "cache").mkdir()
        cache = build_frame_cache(data, config, tmp_path / "cache")
        reader = SampleReader(data, cache, config, config.architecture.mean_std)
        for video, position in data.samples[::5]:
            predicted = data.cams.read(data.videos[video].video_id, "label")[position]
            draw = np.random.default_rng(0)  # the sample's draws: top (0: the window is the frame's height), left, flip
            top, left = int(draw.integers(0, 1)), int(draw.integers(0, predicted.shape[1] - 64 + 1))
            window = predicted[top : top + 64, left : left + 64]
            expected = labels.CLASS_INDEX[window[:, ::-1] if draw.random() < 0.5 else window]
            np.testing.assert_array_equal(reader.sample(video, position, np.random.default_rng(0))["cam"], expected)


def test_bad_inputs_fail_clearly(cli, trained, synth, tmp_path):
    swapped = cli("-q", "train", "--edges", trained.cam, "--cam", trained.edges, "-o", tmp_path / "m", *TINY_TRAIN)
    assert swapped.code == 1 and "is a cam store, expected edges" in swapped.stderr
    other = tmp_path / "other-edges.zarr"
    assert cli("-q", "edges", synth.root, "--every", "4", "-o", other).code == 0
    mismatch = cli("-q", "train", "--edges", other, "--cam", trained.cam, "-o", tmp_path / "m", *TINY_TRAIN)
    assert mismatch.code == 1 and "disagree on the frames of video" in mismatch.stderr
    tags = tmp_path / "tags.csv"
    tags.write_text("video,tags\nsynth0000,dog-running\n")
    untagged = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "--tags", tags, "-o", tmp_path / "m", *TINY_TRAIN)
    assert untagged.code == 1 and "no tags for video(s) synth0001" in untagged.stderr
    occupied = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", trained.model, *TINY_TRAIN)
    assert occupied.code == 1 and "output exists" in occupied.stderr
    unknown = tmp_path / "bad.toml"
    unknown.write_text("learning_rat = 0.1\n")
    typo = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "--config", unknown, "-o", tmp_path / "m2", *TINY_TRAIN)
    assert typo.code == 1 and "unknown training options: learning_rat" in typo.stderr


@pytest.mark.parametrize("world", [2, 4])
def test_the_processes_of_a_ddp_group_draw_exactly_the_one_process_batch(world):
    """Against a one-process run: each process takes its own slots, and together the slots are the
    one-process batch, sample for sample and crop for crop (each slot's generator the same)."""
    config = resolve("cpu", flags={"batch_size": 8, "seed": 5})

    def drawn(slots):
        return [(sample, int(rng.integers(1 << 30))) for sample, rng in slots]

    for iteration in (0, 17):
        alone = drawn(batch_slots(config, iteration, 40, 0, 1))
        per_rank = [drawn(batch_slots(config, iteration, 40, rank, world)) for rank in range(world)]
        assert all(len(slots) == 8 // world for slots in per_rank)
        interleaved = [per_rank[slot % world][slot // world] for slot in range(8)]
        assert interleaved == alone
    assert drawn(batch_slots(config, 1, 40, 0, 1)) != drawn(batch_slots(config, 0, 40, 0, 1))


def test_two_process_ddp_gives_a_model_predict_can_load(trained, tmp_path):
    """Through an explicit c10d rendezvous: the path a multi-node run takes (README, docs/scale.md)."""
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not installed")
    folder = tmp_path / "ddp"
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    rendezvous = ["--nnodes", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}", "--rdzv-id", "vscr-test"]
    command = [torchrun, *rendezvous, "--nproc-per-node", "2", "-m", "vscr_cli", "-q", "train", "--edges", str(trained.edges), "--cam", str(trained.cam), "-o", str(folder), "--device", "cpu", *TINY_TRAIN]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    model, config, _ = load_model(folder, torch.device("cpu"), TrainConfig)
    assert config.batch_size == 4
    assert len(_metrics(folder)) == 2


def test_auto_preset_and_duration_estimates():
    assert preset_for(torch.device("cuda")) == "gpu" and preset_for(torch.device("cpu")) == "cpu"
    assert [duration(s) for s in (0.4, 42, 425, 12_000, 120_400)] == ["0 s", "42 s", "7 min 05 s", "3 h 20 min", "1 d 09 h"]
