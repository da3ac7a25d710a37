"""torchvision ResNet-50 and ResNet-101 (DeepLab's backbones; the paper's classifier is ResNet-50,
its segmentation backbone ResNet-101), torchvision's ImageNet weights from torch.hub's cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from vscr_cli.core.models.architectures import IMAGENET_MEAN, IMAGENET_STD, Architecture, register

if TYPE_CHECKING:
    from torch import Tensor, nn

    from vscr_cli.core.models.backbones import Backbone


def _classifier(depth: int):
    def build(num_classes: int, imagenet_state_dict: Mapping[str, Tensor] | None) -> nn.Module:
        from vscr_cli.core.models.backbones import build_resnet

        return build_resnet(depth, num_classes, imagenet_state_dict)

    return build


def _backbone(depth: int):
    def build(imagenet_state_dict: Mapping[str, Tensor] | None, output_stride: int) -> Backbone:
        from vscr_cli.core.models.backbones import resnet_backbone

        return resnet_backbone(depth, imagenet_state_dict, output_stride)

    return build


def _last_stage(model: nn.Module) -> nn.Module:
    return model.layer4[-1]


register(
    Architecture(
        name="resnet50",
        description="ResNet-50 (the paper's classifier)",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights="resnet50-imagenet",
        classifier=_classifier(50),
        backbone=_backbone(50),
        cam_layer=_last_stage,
    )
)
register(
    Architecture(
        name="resnet101",
        description="ResNet-101 DeepLab (the paper's backbone, GPU)",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights="resnet101-imagenet",
        backbone=_backbone(101),
    )
)
