"""The paper's method by one switch (issue #38): each stage's `--preset paper` resolves to the
paper's settings (Sec. 3.1, 4.2, Fig. 1), pinned here against the paper's numbers, not against the
code's defaults; and the A2D example's paper mode uses only the presets."""

from __future__ import annotations

import re
import tomllib

import torch

from vscr_cli.settings.train import resolve
from vscr_cli.stages.predict import decide

from .conftest import REPO

#: Sec. 4.2 "Training and Inference" and Fig. 1, as the paper states them.
PAPER_TRAINING = {
    "iterations": 40000,  # "train the model for 40,000 iterations"
    "batch_size": 10,  # "batch size of 10 frames"
    "learning_rate": 8e-4,  # "learning rate to 8x10^-4"
    "poly_power": 0.9,  # "poly learning rate policy of power 0.9"
    "momentum": 0.9,  # "SGD ... momentum of 0.9"
    "weight_decay": 5e-4,  # "weight decay of 5x10^-4"
    "crop": 224,  # "patches of 224x224 randomly cropped"
    "backbone": "resnet101",  # DeepLab (ResNet-101) with ASPP
    "output_stride": 8,
    "motion": "i3d",  # I3D pretrained on Kinetics-400, fixed
    "motion_spatial": False,  # "a flatten 2048-dimensional vector" through a two-layer MLP, expanded bilinearly
    "action_head": False,  # no loss outside Eq. 4
    "new_layers_lr_scale": 1.0,  # one learning rate
    "crop_share": 0.0,  # the frames as they are
    "crop_max_class_share": 1.0,  # uniform random crops
    "scale_min": 1.0,
    "scale_max": 1.0,
    "tag_memory": False,
    "head_gradient": 0.0,  # the head reads the embedding, detached (SPML's softmax classifier)
}
#: Eq. 4's concentrations and weights and the clustering (Sec. 3.2, 4.2: "the spherical Kmeans clustering iteration is 10").
PAPER_OBJECTIVE = {
    "edge_concentration": 16.0, "cam_concentration": 6.0, "tag_concentration": 8.0,
    "edge_weight": 0.3, "cam_weight": 0.3, "tag_weight": 0.1,
    "use_edge": True, "use_cam": True, "use_tag": True, "use_unlabeled": True, "iterations": 10,
}  # fmt: skip


def _printed(cli, *args: str) -> dict:
    done = cli(*args, "--print-config")
    assert done.code == 0, done.stderr
    return tomllib.loads(done.stdout)


def test_train_preset_paper_is_the_papers_stage_two(cli):
    printed = _printed(cli, "train", "--device", "cpu", "--preset", "paper")
    assert {key: printed[key] for key in PAPER_TRAINING} == PAPER_TRAINING
    assert {key: printed["objective"][key] for key in PAPER_OBJECTIVE} == PAPER_OBJECTIVE
    assert resolve("paper").aspp_rates() == (6, 12, 18)  # DeepLab's rates at output stride 8


def test_paper_cpu_changes_only_the_networks_and_sizes():
    paper, small, cpu = resolve("paper").to_json(), resolve("paper-cpu").to_json(), resolve("cpu").to_json()
    sizes = ("backbone", "motion", "iterations", "batch_size", "learning_rate", "crop", "checkpoint_every", "log_every")
    assert {key for key in paper if paper[key] != small[key]} == set(sizes)
    assert {key: small[key] for key in sizes} == {key: cpu[key] for key in sizes}
    assert (small["action_head"], small["motion_spatial"], small["new_layers_lr_scale"], small["crop_share"], small["crop_max_class_share"], small["head_gradient"]) == (False, False, 1.0, 0.0, 1.0, 0.0)


def test_cam_preset_paper_is_the_papers_stage_one(cli, tmp_path):
    printed = _printed(cli, "cam", "--preset", "paper")  # no sources needed to print
    assert _printed(cli, "cam", str(tmp_path), "--preset", "paper") == printed
    assert printed["classifier"]["arch"] == "resnet50"  # "Our finetuned ResNet-50"
    labels = printed["pseudo_labels"]
    assert labels["cam_heights"] == [224] and labels["threshold"] == 0.5 and labels["slic_segments"] > 0 and labels["slic_height"] == 0  # Grad-CAM++, SLIC on the frame, "threshold of 0.5"
    assert (labels["motion_weight"], labels["crf"], labels["doubt_band"], labels["cam_flip"], labels["cam_pad"]) == (0.0, False, 0.0, False, 0.0)
    assert labels["none_policy"] == "unlabeled"  # "this unlabeled sample is not avoidable since we have none category"
    given = _printed(cli, "cam", str(tmp_path), "--preset", "paper", "--arch", "tf_efficientnet_lite0", "--motion-evidence", "0.4")
    assert given["classifier"]["arch"] == "tf_efficientnet_lite0" and given["pseudo_labels"]["motion_weight"] == 0.4  # the command line wins


def test_predict_preset_paper_is_the_papers_inference(cli, tmp_path):
    printed = _printed(cli, "predict", "--preset", "paper")  # no sources needed to print
    assert _printed(cli, "predict", str(tmp_path), "--preset", "paper") == printed
    assert (printed["decode"], printed["decision"], printed["crf"]) == ("frame", "argmax", False)
    default = _printed(cli, "predict", str(tmp_path))
    assert (default["decode"], default["decision"], default["crf"], default["crf_height"]) == ("video", "foreground", True, 160)


def test_the_crf_height_is_160_rows_on_both_sides_and_0_means_the_frames_own(cli):
    """The network's CRF and the pseudo-labels' run at the same rows by default (docs/decisions/0027);
    0 runs them at the frames' height; 1-7 rows are refused with one line."""
    assert _printed(cli, "cam", "--crf")["pseudo_labels"]["crf_height"] == _printed(cli, "predict")["crf_height"] == 160
    assert _printed(cli, "cam", "--crf", "--crf-height", "0")["pseudo_labels"]["crf_height"] == 0
    for command in ("cam", "predict"):
        done = cli(command, "--crf-height", "4", "--print-config")
        assert done.code != 0 and "--crf-height must be 0" in done.stderr, done.stderr


def test_the_papers_decision_is_the_softmax_argmax():
    prob = torch.tensor([0.4, 0.3, 0.3, 0.0]).view(1, 4, 1, 1)  # background likeliest, the actor's mass spread over two classes
    assert decide(prob, "argmax").item() == 0
    assert decide(prob, "foreground").item() == 1


def test_the_a2d_example_runs_the_paper_by_its_presets_alone():
    script = (REPO / "examples" / "a2d-release.sh").read_text()
    paper = script[script.index("paper)") : script.index(";;", script.index("paper)"))]
    for stage in ("cam", "train", "predict"):
        line = re.search(rf"(?:vscr |\()({stage} .*?)(?:\n\s*\w|\)|\|)", paper, re.S)
        assert line and "--preset paper" in line.group(1), stage
    for method_flag in ("--none-tags", "--arch", "--no-crf", "--motion", "--cam-heights", "--iterations"):
        assert method_flag not in paper, method_flag


def test_cam_and_predict_need_sources_unless_they_print_their_settings(cli, tmp_path):
    for command in ("cam", "predict"):
        done = cli(command, "-o", str(tmp_path / f"{command}.zarr"))
        assert done.code == 2 and "SOURCES" in done.stderr, done.stderr
        assert not (tmp_path / f"{command}.zarr").exists()
