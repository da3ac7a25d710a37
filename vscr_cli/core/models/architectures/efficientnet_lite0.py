"""EfficientNet-Lite0 (timm ``tf_efficientnet_lite0``): the CPU presets' classifier and backbone,
its ImageNet weights shipped on the package index."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from vscr_cli.core.models.architectures import Architecture, register

if TYPE_CHECKING:
    from torch import Tensor, nn

    from vscr_cli.core.models.backbones import Backbone


def classifier(num_classes: int, imagenet_state_dict: Mapping[str, Tensor] | None) -> nn.Module:
    from vscr_cli.core.models.backbones import build_efficientnet_lite0

    return build_efficientnet_lite0(num_classes, imagenet_state_dict)


def backbone(imagenet_state_dict: Mapping[str, Tensor] | None, output_stride: int) -> Backbone:
    from vscr_cli.core.models.backbones import efficientnet_lite0_backbone

    return efficientnet_lite0_backbone(imagenet_state_dict, output_stride)


register(
    Architecture(
        name="tf_efficientnet_lite0",
        description="EfficientNet-Lite0, light (CPU)",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        weights="efficientnet-lite0-imagenet",
        classifier=classifier,
        backbone=backbone,
        cam_layer=lambda model: model.bn2,
    )
)
