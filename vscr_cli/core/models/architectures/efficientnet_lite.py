"""EfficientNet-Lite0 and Lite2 (timm ``tf_efficientnet_lite0`` / ``tf_efficientnet_lite2``): Lite0 the
CPU presets' classifier and backbone, Lite2 a larger one (6.1 M parameters against 4.7 M; ImageNet
top-1 77.6% against 75.1% in TensorFlow's published figures); both with ImageNet weights shipped on
the package index."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from vscr_cli.core.models.architectures import Architecture, register

if TYPE_CHECKING:
    from torch import Tensor, nn

    from vscr_cli.core.models.backbones import Backbone


def classifier(name: str, num_classes: int, imagenet_state_dict: Mapping[str, Tensor] | None) -> nn.Module:
    from vscr_cli.core.models.backbones import build_efficientnet_lite

    return build_efficientnet_lite(name, num_classes, imagenet_state_dict)


def backbone(name: str, imagenet_state_dict: Mapping[str, Tensor] | None, output_stride: int) -> Backbone:
    from vscr_cli.core.models.backbones import efficientnet_lite_backbone

    return efficientnet_lite_backbone(name, imagenet_state_dict, output_stride)


for _name, _description, _weights in (
    ("tf_efficientnet_lite0", "EfficientNet-Lite0, light (CPU)", "efficientnet-lite0-imagenet"),
    ("tf_efficientnet_lite2", "EfficientNet-Lite2, larger (CPU)", "efficientnet-lite2-imagenet"),
):
    register(
        Architecture(
            name=_name,
            description=_description,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            weights=_weights,
            classifier=functools.partial(classifier, _name),
            backbone=functools.partial(backbone, _name),
            cam_layer=lambda model: model.bn2,
        )
    )
