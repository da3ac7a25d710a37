"""Batch-norm folding (vscr_cli.core.models.folding): the folded networks of vscr cam and vscr
predict compute what the originals compute, with no batch-norm pass left."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vscr_cli.core.models.folding import folded
from vscr_cli.model_folders import build_model
from vscr_cli.settings.cam import ClassifierConfig
from vscr_cli.settings.model import ModelConfig
from vscr_cli.stages.cam.classifier import build_classifier


def with_trained_statistics(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with random batch-norm statistics and affine weights, as a trained
    network has (a fresh one's are the identity, which would fold into nothing)."""
    generator = torch.Generator().manual_seed(0)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            channels = module.num_features
            module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(channels, generator=generator) * 2 + 0.1)
            module.weight.data.copy_(torch.rand(channels, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(channels, generator=generator) * 0.2)
    return model.eval()


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(module, nn.BatchNorm2d) for module in model.modules())


@pytest.mark.parametrize("arch", ["tf_efficientnet_lite0", "resnet50"])
def test_a_folded_classifier_computes_the_same_logits_without_batch_norms(arch):
    model = with_trained_statistics(build_classifier(ClassifierConfig(arch=arch), None))
    images = torch.randn(2, 3, 64, 80, generator=torch.Generator().manual_seed(1))
    result = folded(model, lambda network: network(images[:1]))
    assert result is not model and batch_norms(model) > 40  # the original is left as it was
    assert batch_norms(result) == 0
    with torch.no_grad():
        expected, got = model(images), result(images)
    assert expected.std() > 0.1
    torch.testing.assert_close(got, expected, atol=1e-4 * float(expected.abs().max()), rtol=1e-4)


def test_the_predict_network_folds_with_its_motion_branch():
    config = ModelConfig(motion="flow", crop=64)
    model = with_trained_statistics(build_model(config))
    generator = torch.Generator().manual_seed(2)
    frames = torch.randn(2, 3, 96, 128, generator=generator)
    motion = torch.randn(2, 2 * (config.clip_length - 1), 96, 128, generator=generator)
    result = folded(model, lambda network: network(frames[:1], motion[:1]).logits)
    assert batch_norms(result) < batch_norms(model) // 4  # those after a convolution (the ASPP's included)
    with torch.no_grad():
        expected, got = model(frames, motion), result(frames, motion)
    torch.testing.assert_close(got.logits, expected.logits, atol=1e-4 * float(expected.logits.abs().max()), rtol=1e-4)
    torch.testing.assert_close(got.embedding, expected.embedding, atol=1e-4, rtol=1e-4)


class SharedOutput(nn.Module):
    """A convolution whose output feeds its batch norm and a skip connection: folding would change the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.norm = nn.BatchNorm2d(4)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.conv(images)
        return self.norm(features) + features


def test_a_norm_that_cannot_fold_leaves_the_model_as_it_is():
    model = with_trained_statistics(SharedOutput())
    images = torch.randn(1, 3, 16, 16)
    assert folded(model, lambda network: network(images)) is model
    with pytest.raises(ValueError, match="eval mode"):
        folded(model.train(), lambda network: network(images))
