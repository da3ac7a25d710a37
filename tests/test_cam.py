import json

import av
import numpy as np

from vscr_cli import labels
from vscr_cli.core.crf import crf_labels
from vscr_cli.core.precision import autocast_dtype, dtype_name
from vscr_cli.sources import discover
from vscr_cli.stages.cam import cam_tag, evidence, motion_partners, pseudo_label, pseudo_labels
from vscr_cli.stages.cam.pseudo import superpixels
from vscr_cli.store import open_store

FAST = ["--epochs", "1", "--fit-frames", "4", "--input-height", "64", "--cam-heights", "64,96", "--batch-size", "4"]


def test_which_videos_are_labeled():
    assert cam_tag((77,)) == 77
    assert cam_tag((77, 18)) is None and cam_tag(()) is None
    assert cam_tag((79,)) == 79  # dog-none: the actor classifier's CAM of the dog
    assert cam_tag((79,), none_policy="unlabeled") is None  # the paper's rule


def test_pseudo_label_takes_superpixels_by_mean_activation():
    regions = np.repeat(np.arange(4), 4).reshape(4, 4)  # each row is one superpixel
    activation = np.array([[0.9] * 4, [0.6] * 4, [0.2, 0.9, 0.9, 0.9], [0.0] * 4])
    assert pseudo_label(activation, regions, 77, 0.5)[:, 0].tolist() == [77, 77, 77, 0]
    assert pseudo_label(activation, regions, 77, 0.75)[:, 0].tolist() == [77, 0, 0, 0]  # row 2: mean 0.725
    # a doubt band of 0.3 below 0.75: rows of mean 0.6 and 0.725 are left unlabelled, the row of 0 stays background
    assert pseudo_label(activation, regions, 77, 0.75, doubt_band=0.3)[:, 0].tolist() == [77, labels.IGNORE, labels.IGNORE, 0]
    assert pseudo_label(activation, regions, 77, 0.75, doubt_band=0.1)[:, 0].tolist() == [77, 0, labels.IGNORE, 0]


def test_superpixels_at_a_smaller_height_cover_the_frame_and_keep_its_edges():
    """SLIC on the frame shrunk to 40 rows: ids for every pixel of the 80-row frame, about as many
    superpixels as asked, none across the edge between a dark disc and a bright background."""
    rows, cols = np.mgrid[:80, :120]
    disc = (rows - 40) ** 2 + (cols - 60) ** 2 < 25**2
    frame = np.where(disc[..., None], 40, 210).astype(np.uint8).repeat(3, axis=2)
    frame = np.clip(frame + np.random.default_rng(0).integers(-10, 10, frame.shape), 0, 255).astype(np.uint8)
    full, small = superpixels(frame, 30), superpixels(frame, 30, height=40)
    assert small.shape == full.shape == (80, 120) and small.dtype == full.dtype
    assert 15 <= len(np.unique(small)) <= 45 and np.array_equal(superpixels(frame, 30, height=80), full)
    inside = np.unique(small[disc])
    straddling = [i for i in inside if 0.1 < disc[small == i].mean() < 0.9]
    assert not straddling


def test_per_video_threshold_splits_the_video_evidence_by_otsu():
    regions = np.repeat(np.arange(4), 4).reshape(1, 4, 4)
    values = np.array([[[0.9] * 4, [0.85] * 4, [0.1] * 4, [0.0] * 4]])  # two modes
    assert pseudo_labels(values, regions, 77, 0.05)[0, :, 0].tolist() == [77, 77, 77, 0]
    assert pseudo_labels(values, regions, 77, None)[0, :, 0].tolist() == [77, 77, 0, 0]
    assert pseudo_labels(values * 0.4, regions, 77, 0.5)[0, :, 0].tolist() == [0, 0, 0, 0]
    assert pseudo_labels(values * 0.4, regions, 77, None)[0, :, 0].tolist() == [77, 77, 0, 0]


def test_where_one_cue_alone_reaches_the_threshold_the_superpixel_is_left_unlabelled():
    """Rows (superpixels): a moving actor (both cues), a still crowd of the class (the map alone), a
    moving background (motion alone), still background (neither)."""
    regions = np.repeat(np.arange(4), 4).reshape(1, 4, 4)
    activation = np.array([[[0.8] * 4, [0.7] * 4, [0.1] * 4, [0.1] * 4]])
    motion = np.array([[[0.9] * 4, [0.1] * 4, [0.8] * 4, [0.0] * 4]])
    mixed = evidence(activation, motion, 0.5)  # 0.85, 0.4, 0.45, 0.05
    assert pseudo_labels(mixed, regions, 18, 0.5)[0, :, 0].tolist() == [18, 0, 0, 0]
    kept = pseudo_labels(mixed, regions, 18, 0.5, cues=(activation, motion))[0, :, 0].tolist()
    assert kept == [18, labels.IGNORE, labels.IGNORE, 0]
    crowd_only = pseudo_labels(mixed, regions, 18, 0.5, cues=(activation,))[0, :, 0].tolist()  # --ignore-disagreement class-map
    assert crowd_only == [18, labels.IGNORE, 0, 0]


def test_evidence_mixes_motion_in_and_motion_partners_stay_in_the_video():
    activation, motion = np.full((1, 2, 2), 0.8), np.array([[[0.0, 1.0], [0.5, 0.5]]])
    np.testing.assert_allclose(evidence(activation, motion, 0.5), [[[0.4, 0.9], [0.65, 0.65]]])
    assert evidence(activation, None, 0.5) is activation
    assert motion_partners([0, 4, 8, 9], 10, 2) == [2, 6, 6, 7]
    assert motion_partners([0], 1, 1) == [0]


def test_auto_motion_evidence_trusts_the_cue_that_claims_less_of_the_frame():
    """A class map lit on a whole crowd (the breakdance case) and motion only on the dancer: the
    fixed 0.4 mix leaves the dancer under 0.5, the spread weights lift it; with the cues' roles
    swapped (a shaking camera's residual motion everywhere) they trust the class map instead."""
    actor = np.zeros((1, 10, 10), bool)
    actor[0, 3:6, 3:6] = True
    crowd = np.full((1, 10, 10), 0.2)  # the class map as weak on the dancer as on the crowd around (breakdance: 0.22 / 0.21)
    moving = np.where(actor, 0.9, 0.05)  # motion claims the dancer
    fixed, auto = evidence(crowd, moving, 0.4), evidence(crowd, moving, None)
    assert (fixed[actor] < 0.5).all()  # 0.48: at the default threshold the dancer is background
    weight = crowd.mean() / (crowd.mean() + moving.mean())
    np.testing.assert_allclose(auto, (1 - weight) * crowd + weight * moving)
    assert (auto[actor] - auto[~actor].max()).min() > (fixed[actor] - fixed[~actor].max()).min()  # a wider margin at the actor
    assert (auto[~actor] < 0.5).all() and (auto[actor] > 0.5).all()
    shaking, mapped = np.full((1, 10, 10), 0.7), np.where(actor, 0.9, 0.05)
    swapped = evidence(mapped, shaking, None)
    assert swapped[actor].min() > 0.5 > swapped[~actor].max()  # fixed 0.4 gives 0.82 / 0.31, auto keeps the map in charge
    assert evidence(crowd, moving, 0.0) is crowd


def test_cam_command_on_synthetic_data(cli, synth, tmp_path, lite0_weights_path):
    out = tmp_path / "cam.zarr"
    result = cli("-q", "cam", synth.root, "--tags", synth.root / "tags.csv", "--max-frames", "4", "-o", out, *FAST)
    assert result.code == 0, result.stderr
    folder = tmp_path / "cam.classifier"
    config = json.loads((folder / "classifier.json").read_text())
    assert config["arch"] == "tf_efficientnet_lite0" and config["classes"] == list(labels.ACTORS)
    assert 0 <= config["accuracy"] <= 1 and config["holdout_frames"] > 0
    assert (folder / "classifier.safetensors").read_bytes()[:8] != b"\x80\x02\x8a\x0alz"  # not a pickle
    sources = {v.video_id: v for v in discover([synth.root])}
    with open_store(out, "cam") as store:
        assert store.record.params["classifier_accuracy"] == config["accuracy"]
        assert store.record.params["precision"] == dtype_name(autocast_dtype("cpu"))  # the maps' autocast, --precision auto's
        for video in synth.summary.videos:
            attrs = store.video_attrs(video.video_id)
            cam, pseudo = store.read(video.video_id, "cam"), store.read(video.video_id, "pseudo")
            assert cam.shape == pseudo.shape == (4, 64, 96) and cam.dtype == pseudo.dtype == np.uint8
            tag = cam_tag(video.tags)
            assert attrs == {"labeled": tag is not None, "tags": list(video.tags), "source_sha256": sources[video.video_id].digest()}
            if tag is None:
                assert (pseudo == labels.IGNORE).all() and (cam == 0).all()
            else:
                assert set(np.unique(pseudo).tolist()) <= {0, tag}
                assert cam.max() == 255  # Grad-CAM++ maps are normalised per frame
    # a second run reuses the saved classifier instead of fitting again
    # (the tags come from the A2D root when --tags is not given)
    again = cli("cam", synth.root, "--max-frames", "4", "-o", tmp_path / "cam2.zarr", "--classifier", folder, *FAST)
    assert again.code == 0 and "reusing the classifier" in again.stderr
    with open_store(tmp_path / "cam2.zarr") as first, open_store(out) as second:
        video = next(v.video_id for v in synth.summary.videos if cam_tag(v.tags) is not None)
        np.testing.assert_array_equal(first.read(video, "pseudo"), second.read(video, "pseudo"))
    # each refinement switched the other way from its default still gives valid pseudo-labels
    with open_store(out) as store:
        defaults = store.record.params
    flipped = ["--cam-pad", "0" if defaults["cam_pad"] else "0.1", "--no-cam-flip" if defaults["cam_flip"] else "--cam-flip",
               "--motion-weight", "0" if defaults["motion_weight"] else "0.5", "--fixed-threshold" if defaults["threshold"] is None else "--video-threshold"]
    other = cli("-q", "cam", synth.root, "--max-frames", "4", "-o", tmp_path / "cam3.zarr", "--classifier", folder, *FAST, *flipped)
    assert other.code == 0, other.stderr
    with open_store(tmp_path / "cam3.zarr") as store:
        changed = {k for k, v in store.record.params.items() if v != defaults[k]}
        assert changed == {"cam_pad", "cam_flip", "motion_weight", "threshold"}
        for video in synth.summary.videos:
            tag = cam_tag(video.tags)
            if tag is not None:
                assert set(np.unique(store.read(video.video_id, "pseudo")).tolist()) <= {0, tag}
    # motion alone switched: the same activation maps, other pseudo-labels (a stage ignoring motion fails here)
    assert defaults["motion_weight"] is None  # the default: motion on, weighted per frame (--motion-evidence auto)
    still = cli("-q", "cam", synth.root, "--max-frames", "4", "-o", tmp_path / "cam4.zarr", "--classifier", folder, *FAST, "--motion-weight", "0")
    assert still.code == 0, still.stderr
    with open_store(tmp_path / "cam2.zarr") as moving, open_store(tmp_path / "cam4.zarr") as static:
        labeled = [v.video_id for v in synth.summary.videos if cam_tag(v.tags) is not None]
        for video in labeled:
            np.testing.assert_array_equal(moving.read(video, "cam"), static.read(video, "cam"))
        assert any((moving.read(video, "pseudo") != static.read(video, "pseudo")).any() for video in labeled)
    # --crf: the same maps, and each frame's pseudo-label is the plain one through the dense CRF on that frame
    sharp = cli("-q", "cam", synth.root, "--max-frames", "4", "-o", tmp_path / "cam5.zarr", "--classifier", folder, *FAST, "--crf")
    assert sharp.code == 0, sharp.stderr
    with open_store(tmp_path / "cam2.zarr") as plain, open_store(tmp_path / "cam5.zarr") as crf:
        assert crf.record.params["crf"] is True and plain.record.params["crf"] is False
        sources = {v.video_id: v for v in discover([str(synth.root)])}
        changed = 0
        for video in synth.summary.videos:
            if (tag := cam_tag(video.tags)) is None:
                np.testing.assert_array_equal(crf.read(video.video_id, "pseudo"), plain.read(video.video_id, "pseudo"))
                continue
            np.testing.assert_array_equal(crf.read(video.video_id, "cam"), plain.read(video.video_id, "cam"))
            frames = [frame for _, frame in sources[video.video_id].read(crf.frame_index(video.video_id).tolist())]
            expected = np.stack([np.where(crf_labels(frame, label == tag, 2), tag, 0) for frame, label in zip(frames, plain.read(video.video_id, "pseudo"))])
            np.testing.assert_array_equal(crf.read(video.video_id, "pseudo"), expected)
            changed += int((expected != plain.read(video.video_id, "pseudo")).sum())
        assert changed


def test_cam_errors(cli, synth, tmp_path):
    tags = tmp_path / "tags.csv"
    tags.write_text("video,tags\nsynth0000,dog-running\n")
    missing = cli("-q", "cam", synth.root, "--tags", tags, "-o", tmp_path / "c.zarr", *FAST)
    untagged = cli("-q", "cam", next(synth.root.rglob("*.mp4")), "-o", tmp_path / "c.zarr", *FAST)
    assert untagged.code == 2 and "--tags" in untagged.stderr
    assert missing.code == 1 and "no tags for video(s) synth0001" in missing.stderr
    tags.write_text("video,tags\nsynth0000,dog-swimming\n")
    unknown = cli("-q", "cam", synth.root, "--tags", tags, "-o", tmp_path / "c.zarr", *FAST)
    assert unknown.code == 1 and "tags.csv:2: unknown actor-action tag 'dog-swimming'" in unknown.stderr
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height = 64, 48
    tags.write_text("video,tags\nempty,dog-running\n")
    no_frames = cli("-q", "cam", empty, "--tags", tags, "-o", tmp_path / "c.zarr", *FAST)
    assert no_frames.code == 1 and "empty.mp4" in no_frames.stderr
    assert not (tmp_path / "c.zarr").exists()


def test_cam_on_davis_dev(cli, davis_dev, tmp_path, lite0_weights_path):
    out = tmp_path / "davis-cam.zarr"
    sources = [davis_dev / name / "frames" for name in ("dog", "parkour", "cows", "blackswan")]
    result = cli("-q", "cam", *sources, "--tags", davis_dev / "tags.csv", "--max-frames", "4", "--height", "96", "-o", out, *FAST)
    assert result.code == 0, result.stderr
    with open_store(out) as store:
        assert store.video_attrs("dog")["labeled"] and not store.video_attrs("cows")["labeled"]
        assert set(np.unique(store.read("dog", "pseudo")).tolist()) <= {0, 78}
        assert store.video_attrs("blackswan")["labeled"]  # bird-none: the bird's CAM by default
        assert set(np.unique(store.read("blackswan", "pseudo")).tolist()) <= {0, 49}
    paper = tmp_path / "davis-cam-paper.zarr"
    result = cli("-q", "cam", *sources, "--tags", davis_dev / "tags.csv", "--max-frames", "4", "--height", "96", "--none-tags", "unlabeled", "-o", paper, *FAST)
    assert result.code == 0, result.stderr
    with open_store(paper) as store:
        assert store.record.params["none_policy"] == "unlabeled"
        assert not store.video_attrs("blackswan")["labeled"] and (store.read("blackswan", "pseudo") == 255).all()
    assert json.loads((tmp_path / "davis-cam.classifier" / "classifier.json").read_text())["fitted_actors"] == ["adult", "bird", "dog"]
    assert json.loads((tmp_path / "davis-cam-paper.classifier" / "classifier.json").read_text())["fitted_actors"] == ["adult", "dog"]
    # reusing the paper-rule classifier (no bird frame) for a bird-none video says so, and still runs
    swan = cli("cam", sources[-1], "--tags", davis_dev / "tags.csv", "--max-frames", "2", "--height", "96", "--classifier", tmp_path / "davis-cam-paper.classifier", "-o", tmp_path / "swan.zarr", *FAST)
    assert swan.code == 0 and "was not fine-tuned on bird" in swan.stderr, swan.stderr


def test_the_maps_are_grad_cam_plus_plus_of_the_whole_network():
    """The extractor cuts the backward pass at the target layer; its maps must still be Grad-CAM++'s
    maps of the classifier (the library's own computation, with every weight requiring grad)."""
    import copy

    import torch
    import torch.nn.functional as F
    from pytorch_grad_cam import GradCAMPlusPlus
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from vscr_cli.settings.cam import ClassifierConfig
    from vscr_cli.stages.cam import CamExtractor
    from vscr_cli.stages.cam.classifier import build_classifier, to_input

    torch.manual_seed(0)
    config = ClassifierConfig(input_height=64)
    model = build_classifier(config, None).eval()
    reference_model = copy.deepcopy(model)
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 72, 3), dtype=np.uint8)
    device = torch.device("cpu")
    extractor = CamExtractor(model, config, device, heights=(64,))
    maps = extractor(frames, actor=3)
    extractor.close()

    reference = GradCAMPlusPlus(model=reference_model, target_layers=[config.architecture.cam_layer(reference_model)])
    raw = torch.from_numpy(reference(input_tensor=to_input(frames, config, device), targets=[ClassifierOutputTarget(3)] * 2))
    expected = F.interpolate(raw[:, None], size=(48, 72), mode="bilinear", align_corners=False)[:, 0]
    expected = (expected / expected.amax(dim=(1, 2), keepdim=True)).clamp(0, 1).numpy()
    assert all(p.requires_grad for p in reference_model.parameters())
    assert expected.std() > 0.05  # a map with structure, not a constant
    np.testing.assert_allclose(maps, expected, atol=1e-5)


def test_cam_extractor_under_bf16_autocast_gives_the_fp32_maps_within_rounding():
    """``dtype``: the classifier's passes run under bf16 autocast (half the time where the CPU has
    native bf16) and grad-cam still gets fp32 activations and gradients; the maps stay those of fp32
    up to bf16's rounding (decision record 0030)."""
    import torch

    from vscr_cli.settings.cam import ClassifierConfig
    from vscr_cli.stages.cam import CamExtractor
    from vscr_cli.stages.cam.classifier import build_classifier

    torch.manual_seed(0)
    config = ClassifierConfig(input_height=64)
    model = build_classifier(config, None).eval()
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 72, 3), dtype=np.uint8)
    maps = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        extractor = CamExtractor(model, config, torch.device("cpu"), heights=(64,), dtype=dtype)
        maps[name] = extractor(frames, actor=3)
        extractor.close()
    assert maps["bf16"].dtype == np.float32 and maps["bf16"].shape == (2, 48, 72)
    assert maps["fp32"].std() > 0.05  # a map with structure, not a constant
    assert np.abs(maps["bf16"] - maps["fp32"]).mean() < 0.02
    assert ((maps["bf16"] >= 0.5) == (maps["fp32"] >= 0.5)).mean() > 0.97
    assert not np.array_equal(maps["bf16"], maps["fp32"])  # the passes did run in bf16
