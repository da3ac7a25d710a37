import subprocess
import sys

import numpy as np
import torch

from vscr_cli import labels
from vscr_cli.core import flow
from vscr_cli.core.flow import PairFlows, flow_stack
from vscr_cli.core.models.vscr import upsample
from vscr_cli.core.readout import class_votes
from vscr_cli.model_folders import load_model
from vscr_cli.stages.predict import actor_action_pool, allowed_classes, decide, fold_probabilities, start_decoding, tag_votes, two_stream_classes, video_classes
from vscr_cli.core.models.motion import clip_frames
from vscr_cli.tags import read_tags_csv
from vscr_cli.store import open_store

from .conftest import REPO


def test_decision_takes_foreground_when_its_classes_outweigh_background():
    prob = torch.zeros(1, labels.NUM_CLASSES, 1, 3)
    prob[0, 0] = torch.tensor([0.4, 0.6, 0.9])
    prob[0, 1] = torch.tensor([0.35, 0.3, 0.05])  # adult-climbing
    prob[0, 2] = torch.tensor([0.25, 0.1, 0.05])  # adult-crawling
    assert decide(prob).tolist() == [[[1, 0, 0]]]  # arg-max alone would say background at pixel 0


def test_tags_restrict_the_decision_to_background_and_the_videos_classes():
    logits = torch.full((1, labels.NUM_CLASSES, 2, 2), 0.01).log()
    logits[0, 0], logits[0, 1], logits[0, 5] = torch.tensor([0.3, 0.35, 0.07]).log()[:, None, None]  # background, adult-climbing, another class
    assert decide(logits.softmax(1))[0, 0, 0].item() == 1
    label, prob = start_decoding(logits, allowed_classes([labels.CLASS_IDS[5]]), (3, 5), keep_prob=True)()
    torch.testing.assert_close(prob.float().sum(1), torch.ones(1, 3, 5), atol=2e-3, rtol=0)
    assert (label == 0).all() and (prob[:, 1] == 0).all()
    label, _ = start_decoding(logits, allowed_classes([labels.CLASS_IDS[1]]), (3, 5), keep_prob=False)()
    assert (label == labels.CLASS_IDS[1]).all()
    label, prob = start_decoding(logits, allowed_classes([]), (3, 5), keep_prob=True)()  # a video without actors
    assert (label == 0).all() and (prob[:, 0] == 1).all()


def test_decoding_among_allowed_classes_is_the_restricted_softmax_of_all_classes():
    logits = torch.randn(2, labels.NUM_CLASSES, 5, 7) * 3
    allowed = allowed_classes([labels.CLASS_IDS[3], labels.CLASS_IDS[9]])
    prob = upsample(logits, (37, 53)).softmax(dim=1) * allowed[None, :, None, None]
    prob /= prob.sum(1, keepdim=True)  # every class's softmax, restricted and renormalised
    label, kept = start_decoding(logits, allowed, (37, 53), keep_prob=True)()
    p = prob.numpy()  # the rule spelled out for these two classes: foreground when they outweigh background, then the likelier
    expected = np.where(p[:, 3] + p[:, 9] > p[:, 0], np.where(p[:, 3] >= p[:, 9], labels.CLASS_IDS[3], labels.CLASS_IDS[9]), 0)
    assert (expected != np.array(labels.CLASS_IDS)[p.argmax(1)]).any()  # pixels where a plain arg-max would say background
    assert (np.asarray(label) == expected).mean() > 0.999
    torch.testing.assert_close(kept.float(), prob, atol=1e-3, rtol=0)


def test_tag_votes_fold_a_tagged_actors_other_actions_into_its_tag():
    dog_jumping, dog_running, adult_running = (int(labels.CLASS_INDEX[i]) for i in (73, 75, 15))  # A2D ids: dog 7x, adult 1x
    prob = torch.full((1, labels.NUM_CLASSES, 1, 1), 0.0)
    prob[0, [0, dog_running, dog_jumping, adult_running], 0, 0] = torch.tensor([0.4, 0.3, 0.2, 0.1])
    logits = prob.clamp_min(1e-9).log()
    tags, allowed = [73], allowed_classes([73])  # the video is tagged dog-jumping
    restricted = fold_probabilities(logits, class_votes(allowed))[:, allowed].softmax(1)
    torch.testing.assert_close(restricted, logits[:, allowed].softmax(1))  # class votes: the restricted softmax
    label, _ = start_decoding(fold_probabilities(logits, tag_votes(tags, "class")), allowed, (1, 1), keep_prob=False)()
    assert label.item() == 0  # background 0.4 against dog-jumping 0.2
    folded = fold_probabilities(logits, tag_votes(tags, "actor")).exp()
    torch.testing.assert_close(folded[0, [0, dog_jumping], 0, 0], torch.tensor([0.4, 0.5]), atol=1e-6, rtol=0)  # dog-running counts for the tag, the adult does not
    label, _ = start_decoding(folded.log(), allowed, (1, 1), keep_prob=False)()
    assert label.item() == 73


def test_video_level_decision_keeps_the_classes_pooled_over_the_video():
    prob = torch.zeros(4, labels.NUM_CLASSES, 2, 2)
    prob[:, 0] = 0.5
    prob[:, 3] = 0.3  # the video's class throughout
    prob[:, 7] = 0.2
    prob[0, 7], prob[0, 9] = 0.0, 0.2  # one frame's stray class
    allowed = video_classes(prob.sum(dim=(0, 2, 3)))
    assert allowed.nonzero().flatten().tolist() == [0, 3, 7]


def test_two_stream_decision_takes_each_actors_actions_from_the_action_head_over_its_cells():
    dog_running, adult_climbing = int(labels.CLASS_INDEX[77]), int(labels.CLASS_INDEX[11])
    logits = torch.full((3, labels.NUM_CLASSES, 2, 4), -9.0)
    logits[:, 0] = 0.0
    logits[:, dog_running, :, :2] = 4.0  # the network sees a dog running on the left ...
    logits[:, adult_climbing, :, 2:] = 4.0  # ... and an adult climbing on the right
    actions = torch.full((3, labels.NUM_ACTIONS, 2, 4), -5.0)
    actions[:, labels.ACTIONS.index("jumping"), :, :2] = 5.0  # the action head: what moves on the left jumps,
    actions[:, labels.ACTIONS.index("walking"), :, 2:] = 5.0  # what moves on the right walks
    pooled = logits.softmax(dim=1).sum(dim=(0, 2, 3))
    pool = actor_action_pool(logits[:2], actions[:2]) + actor_action_pool(logits[2:], actions[2:])  # batch by batch
    torch.testing.assert_close(pool, actor_action_pool(logits, actions))
    decided = [labels.name_of(labels.CLASS_IDS[i]) for i in two_stream_classes(pooled, pool).nonzero().flatten()]
    assert decided == ["background", "adult-walking", "dog-jumping"]
    assert video_classes(pooled).nonzero().flatten().tolist() == [0, adult_climbing, dog_running]  # the pooled decision keeps the network's
    only_dog = logits.clone()
    only_dog[:, adult_climbing] = -9.0
    pooled = only_dog.softmax(dim=1).sum(dim=(0, 2, 3))
    decided = two_stream_classes(pooled, actor_action_pool(only_dog, actions)).nonzero().flatten().tolist()
    assert decided == [0, int(labels.CLASS_INDEX[75])]  # the dog's cells hold its action: dog-jumping alone


def test_predict_writes_label_maps_and_probabilities(cli, trained, synth, tmp_path):
    out = tmp_path / "pred.zarr"
    result = cli("-q", "predict", synth.root, "-m", trained.model, "--annotated-only", "--split", "test", "--prob", "-o", out)
    assert result.code == 0, result.stderr
    test_videos = [v for v in synth.summary.videos if v.split == "test"]
    with open_store(out, "pred") as store:
        assert store.videos == [v.video_id for v in test_videos]
        assert len(store.record.params["model_sha256"]) == 64
        for video in test_videos:
            label, prob = store.read(video.video_id, "label"), store.read(video.video_id, "prob")
            assert store.frame_index(video.video_id).tolist() == list(video.annotated)
            assert label.shape == (3, 64, 96) and label.dtype == np.uint8
            assert set(np.unique(label).tolist()) <= set(labels.CLASS_IDS)
            assert prob.shape == (3, labels.NUM_CLASSES, 64, 96) and prob.dtype == np.float16
            np.testing.assert_allclose(prob.astype(np.float32).sum(1), 1, atol=0.02)
    scored = cli("score", out, "--gt", synth.root, "--json", "-")
    assert scored.code == 0, scored.stderr


def test_scale_runs_the_network_on_larger_frames_and_writes_labels_at_the_output_height(cli, trained, synth, tmp_path, monkeypatch):
    from vscr_cli.stages.predict import Predictor

    seen: list[tuple[int, int]] = []
    original = Predictor.outputs
    monkeypatch.setattr(Predictor, "outputs", lambda self, frames, motion, flip: seen.append(frames.shape[1:3]) or original(self, frames, motion, flip))
    clip = synth.root / "Release" / "clips320H" / "synth0002.mp4"
    for scale in ("1", "2"):
        out = tmp_path / f"scale{scale}.zarr"
        assert cli("-q", "predict", clip, "-m", trained.model, "--height", "64", "--scale", scale, "--max-frames", "2", "-o", out).code == 0
        with open_store(out, "pred") as store:
            assert store.read("synth0002", "label").shape == (2, 64, 96)
            assert store.record.params["scale"] == float(scale)
    # the network sees scale x the model's working height: the cpu preset's 32-px crops at crop_share 0.6 -> 54 rows
    working = load_model(trained.model, torch.device("cpu"))[1].working_height(64)
    assert working == 54
    assert set(seen) == {(working, 80), (2 * working, 162)}
    assert cli("-q", "predict", clip, "-m", trained.model, "--scale", "0", "-o", tmp_path / "bad.zarr").code != 0


def test_flip_runs_the_network_on_mirrored_frames_and_is_recorded(cli, trained, synth, tmp_path, monkeypatch):
    from vscr_cli.stages.predict import Predictor

    flips: list[bool] = []
    original = Predictor.outputs
    monkeypatch.setattr(Predictor, "outputs", lambda self, frames, motion, flip: flips.append(flip) or original(self, frames, motion, flip))
    clip = synth.root / "Release" / "clips320H" / "synth0002.mp4"
    for option in ("--flip", "--no-flip"):
        out = tmp_path / f"{option}.zarr"
        assert cli("-q", "predict", clip, "-m", trained.model, "--height", "64", "--max-frames", "2", option, "-o", out).code == 0
        with open_store(out, "pred") as store:
            assert store.record.params["flip"] is (option == "--flip")
            assert store.read("synth0002", "label").shape == (2, 64, 96)
    assert flips == [True, False]


def test_scales_averaged_is_the_mean_probability_on_the_finest_grid():
    """Multi-scale inference: the class probabilities of each scale upsampled to the finest grid and
    averaged (returned as their log), the embeddings' mean unit length again, the action logits
    averaged; one scale's outputs come back untouched."""
    from vscr_cli.core.models.vscr import VSCROutput
    from vscr_cli.stages.predict import scales_averaged

    g = torch.Generator().manual_seed(0)
    coarse = VSCROutput(torch.nn.functional.normalize(torch.randn(2, 8, 3, 4, generator=g), dim=1), torch.randn(2, 44, 3, 4, generator=g), torch.randn(2, 9, 3, 4, generator=g))
    fine = VSCROutput(torch.nn.functional.normalize(torch.randn(2, 8, 6, 8, generator=g), dim=1), torch.randn(2, 44, 6, 8, generator=g), torch.randn(2, 9, 6, 8, generator=g))
    assert scales_averaged([coarse]) is coarse
    mean = scales_averaged([coarse, fine])
    assert mean.logits.shape == (2, 44, 6, 8) and mean.embedding.shape == (2, 8, 6, 8)
    expected = (upsample(coarse.logits, (6, 8)).softmax(1) + fine.logits.softmax(1)) / 2
    torch.testing.assert_close(mean.logits.exp(), expected)
    torch.testing.assert_close(mean.logits.softmax(1), expected)  # what the decoding reads off them
    torch.testing.assert_close(mean.embedding.norm(dim=1), torch.ones(2, 6, 8))
    torch.testing.assert_close(mean.actions, (upsample(coarse.actions, (6, 8)) + fine.actions) / 2)


def test_multi_scale_runs_the_network_at_each_scale_and_is_recorded(cli, trained, synth, tmp_path, monkeypatch):
    from vscr_cli.stages import predict as stage

    seen: list[int] = []  # the rows of each batch the network read
    averaged: list[tuple[list[tuple[int, int]], tuple[int, int]]] = []  # each batch's grids and the grid of their mean
    original_outputs, original_average = stage.Predictor.outputs, stage.scales_averaged
    monkeypatch.setattr(stage.Predictor, "outputs", lambda self, frames, motion, flip: seen.append(frames.shape[1]) or original_outputs(self, frames, motion, flip))

    def recorded_average(outputs):
        mean = original_average(outputs)
        averaged.append(([tuple(output.logits.shape[-2:]) for output in outputs], tuple(mean.logits.shape[-2:])))
        return mean

    monkeypatch.setattr(stage, "scales_averaged", recorded_average)
    clip = synth.root / "Release" / "clips320H" / "synth0002.mp4"
    out = tmp_path / "msc.zarr"
    result = cli("-q", "predict", clip, "-m", trained.model, "--height", "64", "--max-frames", "3", "--batch-size", "1", "--multi-scale", "0.5,1,2", "--prob", "-o", out)
    assert result.code == 0, result.stderr
    with open_store(out, "pred") as store:
        assert store.record.params["multi_scale"] == [0.5, 1.0, 2.0]
        assert store.read("synth0002", "label").shape == (3, 64, 96)
        np.testing.assert_allclose(store.read("synth0002", "prob").astype(np.float32).sum(1), 1, atol=0.02)
    assert seen == [27, 54, 108] * 3  # each of three batches at each multiple of the working height (54 rows)
    assert len(averaged) == 3 and all(len(grids) == 3 and mean == grids[2] != grids[0] for grids, mean in averaged)  # averaged on the finest grid
    for bad in ("1,1", "0,1", "1,x", "0.01", "nan"):
        refused = cli("-q", "predict", clip, "-m", trained.model, "--multi-scale", bad, "-o", tmp_path / "bad.zarr")
        assert refused.code != 0 and "--multi-scale" in refused.stderr and not (tmp_path / "bad.zarr").exists()
    refused = cli("-q", "predict", clip, "-m", trained.model, "--multi-scale", "1,2", "--readout", "knn", "-o", tmp_path / "knn.zarr")
    assert refused.code != 0 and "--multi-scale" in refused.stderr


def test_crf_decodes_among_the_tags_at_any_network_scale(cli, trained, synth, tmp_path):
    clip = synth.root / "Release" / "clips320H" / "synth0002.mp4"
    tags = read_tags_csv(synth.root / "tags.csv")["synth0002"]
    for scale in ("1", "2"):  # at 2 the frames the network saw are resized to the labels' size for the CRF
        out = tmp_path / f"crf{scale}.zarr"
        result = cli("-q", "predict", clip, "-m", trained.model, "--height", "64", "--scale", scale, "--max-frames", "2", "--crf", "--prob", "--tags", synth.root / "tags.csv", "-o", out)
        assert result.code == 0, result.stderr
        with open_store(out, "pred") as store:
            assert store.record.params["crf"] is True
            label, prob = store.read("synth0002", "label"), store.read("synth0002", "prob")
            assert label.shape == (2, 64, 96) and set(np.unique(label).tolist()) <= {0, *tags}
            np.testing.assert_allclose(prob.astype(np.float32).sum(1), 1, atol=0.02)
            assert not prob[:, [i for i, c in enumerate(labels.CLASS_IDS) if c not in (0, *tags)]].any()


def test_progress_counts_a_held_frame_after_its_crf_when_the_video_decides_its_classes(trained, synth, monkeypatch):
    """--decode video holds every batch until the video's classes are known; with --crf the slow part
    comes after, so the frames are counted as their CRF finishes, each once."""
    from vscr_cli import sources
    from vscr_cli.model_folders import model_sha256
    from vscr_cli.settings.predict import PredictParams
    from vscr_cli.stages import predict
    from vscr_cli.video import FrameSelection

    events: list[str] = []
    original = predict.start_decoding
    monkeypatch.setattr(predict, "start_decoding", lambda *args: events.append("decode") or original(*args))
    video = sources.discover([synth.root / "Release" / "clips320H" / "synth0002.mp4"])[0]
    predictor = predict.load_predictor(trained.model, model_sha256(trained.model), torch.device("cpu"), None)
    selection = FrameSelection(height=64, max_frames=5).to_json()
    for crf, first in ((True, "decode"), (False, "frames")):
        events.clear()
        counted: list[int] = []
        params = PredictParams(selection=selection, decode="video", crf=crf)
        result = predict.video_predictions(video, params, predictor, 2, lambda n: counted.append(n) or events.append("frames"))
        assert sum(counted) == len(result.frame_index) == 5
        assert events[0] == first and events.count("decode") == 3, events


def test_the_two_stream_decision_decodes_its_classes_as_tags(trained, synth, monkeypatch):
    """Without tags the classes the two-stream decision keeps are decoded as if they were the video's
    tags: with actor votes an actor's other classes count for its decided class."""
    from vscr_cli import sources
    from vscr_cli.model_folders import model_sha256
    from vscr_cli.settings.predict import PredictParams
    from vscr_cli.stages import predict
    from vscr_cli.video import FrameSelection

    video = sources.discover([synth.root / "Release" / "clips320H" / "synth0002.mp4"])[0]
    predictor = predict.load_predictor(trained.model, model_sha256(trained.model), torch.device("cpu"), None)
    selection = FrameSelection(height=64, max_frames=4).to_json()
    decided = (15, 77)  # adult-running, dog-running
    monkeypatch.setattr(predict, "two_stream_classes", lambda pooled, actor_actions: allowed_classes(decided))
    for votes in ("actor", "class"):
        free = predict.video_predictions(video, PredictParams(selection=selection, decode="video", crf=False, tag_votes=votes, prob=True), predictor, 2)
        params = PredictParams(selection=selection, decode="tags", crf=False, tag_votes=votes, prob=True)
        tagged = predict.video_predictions(video, params, predictor, 2, tags={video.video_id: decided})
        np.testing.assert_array_equal(free.arrays["label"], tagged.arrays["label"])
        np.testing.assert_array_equal(free.arrays["prob"], tagged.arrays["prob"])


def test_size_at_height_is_the_size_resize_to_height_gives():
    from vscr_cli.video import resize_to_height, size_at_height

    for shape, height in (((240, 427), 120), ((120, 160), 240), ((67, 101), 67), ((480, 854), 333)):
        assert resize_to_height(np.zeros((*shape, 3), np.uint8), height).shape[:2] == size_at_height(shape, height)


def test_flow_once_per_pair_gives_the_store_of_per_clip_flow(cli, trained, synth, tmp_path, monkeypatch):
    """Dense prediction shares each frame pair's flow among the overlapping clips; the store is
    identical to the one made with the flow of every clip computed on its own (the recompute path)."""
    clip = synth.root / "Release" / "clips320H" / "synth0002.mp4"
    args = ["-q", "predict", clip, "-m", trained.model, "--prob", "--batch-size", "3"]
    assert cli(*args, "-o", tmp_path / "cached.zarr").code == 0
    monkeypatch.setattr(PairFlows, "stack", lambda self, clip: flow_stack([self.frame(f) for f in clip]))
    assert cli(*args, "-o", tmp_path / "recomputed.zarr").code == 0
    with open_store(tmp_path / "cached.zarr", "pred") as cached, open_store(tmp_path / "recomputed.zarr", "pred") as recomputed:
        assert cached.frame_index("synth0002").tolist() == list(range(12))
        for name in ("label", "prob"):
            np.testing.assert_array_equal(cached.read("synth0002", name), recomputed.read("synth0002", name), err_msg=name)


def test_pair_flows_compute_each_pair_once_and_forget(monkeypatch):
    frames = np.random.default_rng(0).integers(0, 255, (9, 24, 32, 3), np.uint8)
    clips = [clip_frames(center, 9, 5, 2) for center in range(9)]
    expected = [flow_stack([frames[f] for f in clip]) for clip in clips]  # each clip on its own
    computed = []
    real = flow.pair_flow
    monkeypatch.setattr(flow, "pair_flow", lambda a, b: computed.append(1) or real(a, b))
    flows = flow.PairFlows(frames.__getitem__)
    for center, clip in enumerate(clips):
        np.testing.assert_array_equal(flows.stack(clip), expected[center])
        later = clips[center + 1][0] if center + 1 < len(clips) else 9
        flows.forget(later)
        assert all(first >= later for first, _ in flows.flows) and all(n >= later for n in flows.grays)
    assert len(computed) == len({pair for clip in clips for pair in flow.clip_pairs(clip)})
    assert not flows.flows and not flows.grays


def test_predict_with_tags_labels_only_the_videos_tags(cli, trained, synth, tmp_path):
    out = tmp_path / "pred.zarr"
    tags = read_tags_csv(synth.root / "tags.csv")
    for votes in ("class", "actor"):
        result = cli("-q", "predict", synth.root, "-m", trained.model, "--annotated-only", "--split", "test", "--tags", synth.root / "tags.csv", "--tag-votes", votes, "-o", out, "--overwrite")
        assert result.code == 0, result.stderr
        with open_store(out, "pred") as store:
            assert store.record.params["decode"] == "tags" and store.record.params["tag_votes"] == votes
            for video in store.videos:
                assert set(np.unique(store.read(video, "label")).tolist()) <= {0, *tags[video]}


def test_predict_align_pipe(trained, synth, tmp_path):
    clip = synth.root / "Release" / "clips320H" / "synth0001.mp4"
    aligned = tmp_path / "aligned.zarr.zip"
    command = f"{sys.executable} -m vscr_cli -q predict {clip} -m {trained.model} --max-frames 2 | {sys.executable} -m vscr_cli -q align > {aligned}"
    done = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    with open_store(aligned, "pred") as store:
        assert store.videos == ["synth0001"] and store.read("synth0001", "label").shape == (2, 64, 96)
        assert "aligned" in store.record.params


def test_without_m_the_model_is_vscr_model_else_model_folder(cli, trained, synth, tmp_path, monkeypatch):
    clip = synth.root / "Release" / "clips320H" / "synth0001.mp4"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VSCR_MODEL", raising=False)
    none = cli("predict", clip, "--max-frames", "1", "-o", "none.zarr")
    assert none.code == 1 and none.stderr.count("\n") == 1, none.stderr
    assert "vscr: error: model/: no model here" in none.stderr and "pass -m FOLDER or set VSCR_MODEL" in none.stderr
    monkeypatch.setenv("VSCR_MODEL", str(trained.model))
    assert cli("-q", "predict", clip, "--max-frames", "1", "-o", "env.zarr").code == 0
    monkeypatch.delenv("VSCR_MODEL")
    (tmp_path / "model").symlink_to(trained.model)
    assert cli("-q", "predict", clip, "--max-frames", "1", "-o", "default.zarr").code == 0
    for store, model in (("env.zarr", str(trained.model)), ("default.zarr", "model")):
        with open_store(store, "pred") as pred:
            assert pred.record.inputs["model"] == model and pred.videos == ["synth0001"]


def test_binary_output_to_a_terminal_names_the_ways_on(cli, trained, synth, monkeypatch):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    clip = synth.root / "Release" / "clips320H" / "synth0001.mp4"
    for args, pipe in ((["predict", clip, "-m", trained.model], "(| vscr align, | vscr score)"), (["align"], "(| vscr score)")):
        done = cli(*args)
        assert done.code == 1 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("vscr: error: refusing to write a binary store to a terminal: pass -o FILE") and pipe in done.stderr


def test_a_batch_is_collected_after_the_network_has_run_the_next(trained, synth, monkeypatch):
    """The CRF of one batch runs on the workers while the network does the next: each batch's
    decoding is started at once and collected one network batch later, in order."""
    from vscr_cli import sources
    from vscr_cli.model_folders import model_sha256
    from vscr_cli.settings.predict import PredictParams
    from vscr_cli.stages import predict
    from vscr_cli.video import FrameSelection

    events: list[str] = []
    original_start = predict.start_decoding

    def start(*args):
        number = events.count("start") + 1
        events.append("start")
        finish = original_start(*args)
        return lambda: events.append(f"collect {number}") or finish()

    monkeypatch.setattr(predict, "start_decoding", start)
    video = sources.discover([synth.root / "Release" / "clips320H" / "synth0002.mp4"])[0]
    predictor = predict.load_predictor(trained.model, model_sha256(trained.model), torch.device("cpu"), None)
    original_outputs = predictor.outputs
    monkeypatch.setattr(predictor, "outputs", lambda *args: events.append("network") or original_outputs(*args))
    params = PredictParams(selection=FrameSelection(height=64, max_frames=5).to_json(), decode="tags", crf=True)
    result = predict.video_predictions(video, params, predictor, 2, tags={video.video_id: (15,)})
    assert events == ["network", "start", "network", "start", "collect 1", "network", "start", "collect 2", "collect 3"]
    assert len(result.frame_index) == 5


def test_only_a_predictor_for_inference_folds_its_batch_norms():
    """vscr predict's predictor folds the batch norms at its first call and answers as before;
    vscr refine's (fold_norms off) keeps the model it retrains and saves as it was loaded."""
    from tests.core.test_folding import batch_norms, with_trained_statistics
    from vscr_cli.model_folders import build_model
    from vscr_cli.settings.model import ModelConfig
    from vscr_cli.stages.predict import Predictor

    config = ModelConfig(motion="none", crop=64)
    frames = np.random.default_rng(0).integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    zeros, ones = np.zeros(3, np.float32), np.full(3, 255.0, np.float32)
    predictors = [Predictor(with_trained_statistics(build_model(config)), config, zeros, ones, torch.device("cpu"), None, fold_norms=fold) for fold in (False, True)]
    predictors[1].model.load_state_dict(predictors[0].model.state_dict())
    kept, original = predictors[0].model, predictors[1].model
    plain, folded_output = (predictor.outputs(frames, None) for predictor in predictors)
    assert predictors[0].model is kept and not predictors[1].fold_norms
    assert batch_norms(predictors[1].model) < batch_norms(kept) // 4 and batch_norms(original) == batch_norms(kept)
    assert predictors[1].model is not original and not any(p.is_inference() for p in predictors[1].model.parameters())
    torch.testing.assert_close(folded_output.logits, plain.logits, atol=1e-4 * float(plain.logits.abs().max()), rtol=1e-4)


def test_flipped_inference_answers_a_mirrored_clip_with_the_mirrored_outputs():
    """--flip averages the outputs of a frame and of its mirror image (flow x negated): so a mirrored
    frame and clip get exactly the mirrored outputs, which a single pass does not give."""
    from vscr_cli.core.models.motion import mirrored_flow
    from vscr_cli.model_folders import build_model
    from vscr_cli.settings.model import ModelConfig
    from vscr_cli.stages.predict import Predictor

    torch.manual_seed(0)
    config = ModelConfig(motion="flow", crop=64)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    motion = rng.normal(size=(2, 2 * (config.clip_length - 1), 64, 96)).astype(np.float32)
    predictor = Predictor(build_model(config).eval(), config, np.zeros(3, np.float32), np.full(3, 255.0, np.float32), torch.device("cpu"), None)
    mirrored_motion = mirrored_flow(torch.from_numpy(motion)).numpy()
    for flip, exact in ((True, True), (False, False)):
        output = predictor.outputs(frames, motion, flip)
        mirrored = predictor.outputs(np.ascontiguousarray(frames[:, :, ::-1]), mirrored_motion, flip)
        same = torch.equal(mirrored.logits.flip(-1), output.logits) and torch.equal(mirrored.embedding.flip(-1), output.embedding)
        assert same is exact
    torch.testing.assert_close(output.embedding.norm(dim=1), torch.ones_like(output.embedding[:, 0]))


def test_mirrored_flow_is_the_flow_of_the_mirrored_frames():
    """The flow stack of a mirrored clip is the mirrored stack with x negated (Farneback on a moving square)."""
    import cv2

    from vscr_cli.core.models.motion import mirrored_flow

    clip = []
    for step in range(3):
        frame = np.full((48, 64, 3), 40, np.uint8)
        frame[14:30, 10 + 3 * step : 26 + 3 * step] = 220  # moves right, 3 px a frame
        clip.append(cv2.GaussianBlur(frame, (5, 5), 1.5))
    flow = flow_stack(clip)
    of_mirror = flow_stack([np.ascontiguousarray(frame[:, ::-1]) for frame in clip])
    mirrored = mirrored_flow(torch.from_numpy(flow)).numpy()
    inside = np.zeros((48, 64), bool)
    inside[16:28, 16:26] = True  # in the square's path, mirrored: where both see it move
    inside = inside | inside[:, ::-1]  # symmetric
    np.testing.assert_allclose(mirrored[:, inside], of_mirror[:, inside], atol=0.05 * np.abs(flow).max())
    assert of_mirror[0][inside].mean() < -0.1 * np.abs(flow[0]).max() < 0 < flow[0][inside].mean()  # x negated, not zero


def test_temporal_fusion_averages_each_selected_frame_with_its_neighbours():
    """Frames 0-4 of a still scene (zero flow, every pixel trusted), frames 0 and 3 selected with a
    window of 1: frame 0 gets the mean of frames 0-1's probabilities, frame 3 that of frames 2-4, each
    keeping its own embedding and action logits; the other frames are not output."""
    from vscr_cli.core.models.vscr import VSCROutput
    from vscr_cli.stages.predict import NetworkBatch, temporally_fused

    scene = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    logits = torch.randn(5, labels.NUM_CLASSES, 3, 4, generator=torch.Generator().manual_seed(0))
    embedding, actions = torch.randn(5, 8, 3, 4), torch.randn(5, 9, 3, 4)
    batches = [NetworkBatch(list(part), VSCROutput(embedding[part], logits[part], actions[part]), (24, 32), np.stack([scene] * len(part))) for part in ([0, 1], [2, 3], [4])]
    out = list(temporally_fused(iter(batches), [0, 3], 1, [0, 1, 2, 3, 4]))
    assert [batch.numbers for batch in out] == [[0], [3]]
    prob = logits.softmax(1)
    torch.testing.assert_close(out[0].output.logits[0].exp(), prob[:2].mean(0), atol=1e-3, rtol=0)  # Farneback's flow on a still scene: 0 within noise
    torch.testing.assert_close(out[1].output.logits[0].exp(), prob[2:].mean(0), atol=1e-3, rtol=0)
    assert torch.equal(out[1].output.embedding[0], embedding[3]) and torch.equal(out[1].output.actions[0], actions[3])


def test_temporal_predicts_the_selected_frames_and_is_recorded(cli, trained, synth, tmp_path, monkeypatch):
    from vscr_cli.stages import predict as stage

    fusions: list[int] = []  # the neighbours each fused frame had
    original = stage.fused
    monkeypatch.setattr(stage, "fused", lambda prob, others: fusions.append(len(others)) or original(prob, others))
    clip = synth.root / "Release" / "clips320H" / "synth0002.mp4"
    frames: dict[str, list[int]] = {}
    for window in ("0", "2"):
        out = tmp_path / f"temporal{window}.zarr"
        result = cli("-q", "predict", clip, "-m", trained.model, "--height", "64", "--every", "3", "--max-frames", "3", "--temporal", window, "--prob", "-o", out)
        assert result.code == 0, result.stderr
        with open_store(out, "pred") as store:
            assert store.record.params["temporal"] == int(window)
            assert store.read("synth0002", "label").shape == (3, 64, 96)
            frames[window] = store.frame_index("synth0002").tolist()
            np.testing.assert_allclose(store.read("synth0002", "prob").astype(np.float32).sum(1), 1, atol=0.02)
    assert frames["2"] == frames["0"]  # the neighbours are seen, not written
    assert fusions == [2 if frame == 0 else 4 for frame in frames["2"]]  # and their probabilities count (frame 0 has none before it)
    refused = cli("-q", "predict", clip, "-m", trained.model, "--temporal", "1", "--readout", "knn", "-o", tmp_path / "knn.zarr")
    assert refused.code != 0 and "--temporal" in refused.stderr


def test_prediction_reads_a_videos_frames_as_its_batches_reach_them_and_lets_them_go():
    """network_outputs reads each frame when the first batch whose clips hold it runs and keeps it only
    while a later clip needs it: what prediction holds of a video's frames does not grow with its length."""
    import weakref

    from vscr_cli.model_folders import build_model
    from vscr_cli.settings.model import ModelConfig
    from vscr_cli.stages.predict import Predictor, network_outputs

    torch.manual_seed(0)
    config = ModelConfig(motion="flow", crop=64)  # clips of 5 frames, 2 apart: frame i's reaches i + 4
    predictor = Predictor(build_model(config).eval(), config, np.zeros(3, np.float32), np.full(3, 255.0, np.float32), torch.device("cpu"), None)
    rng = np.random.default_rng(0)
    frames = {number: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for number in range(40)}

    class Video:  # the two calls network_outputs makes of a VideoSource
        def __init__(self) -> None:
            self.read_through, self.alive = -1, []

        def count_frames(self) -> int:
            return len(frames)

        def read(self, indices):
            for number in indices:
                self.read_through = number
                self.alive.append(weakref.ref(frames[number]))
                yield number, frames.pop(number)  # the video holds no reference once a frame is read

    video = Video()
    seen = []
    for batch in network_outputs(video, list(range(40)), None, predictor, 4):
        last = batch.numbers[-1]
        assert video.read_through == min(last + 4, 39)  # read just as far as this batch's clips reach
        held = [ref for ref in video.alive if ref() is not None]
        assert len(held) <= 4 + 4 + 4, len(held)  # the next batch's clips reach back 4 frames: no more than that, this batch's and the reach
        seen.extend(batch.numbers)
    assert seen == list(range(40)) and not frames
