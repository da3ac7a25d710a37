"""The architectures vscr builds, by name (timm-style): one entry knows how to build the network as
an actor classifier and as a segmentation backbone, the layer Grad-CAM++ weighs, the input
normalisation and the name of its ImageNet weights (resolved by ``vscr_cli.weights``; no file I/O here).

Every place that takes an architecture name (``vscr cam --arch``, ``vscr train --backbone``, a
saved model's record) goes through :func:`architecture`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from vscr_cli.core.models.backbones import (
    EFFICIENTNET_LITE0_MEAN,
    EFFICIENTNET_LITE0_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    build_efficientnet_lite0,
    build_resnet,
    efficientnet_lite0_backbone,
    resnet_backbone,
)

StateDict = Mapping[str, Tensor]


@dataclass(frozen=True)
class Architecture:
    """An ImageNet network: ``classifier(num_classes, imagenet_state)`` -> (B, 3, H, W) -> (B, num_classes)
    logits; ``backbone(imagenet_state, output_stride)`` -> :class:`Backbone`; ``cam_layer(classifier)``
    -> its last convolutional stage; inputs are RGB in [0, 1] normalised with ``mean`` / ``std``."""

    name: str
    classifier: Callable[[int, StateDict | None], nn.Module]
    backbone: Callable[[StateDict | None, int], Backbone]
    cam_layer: Callable[[nn.Module], nn.Module]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str  # the name of its ImageNet weights in vscr_cli.weights

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.mean, self.std


def _resnet(depth: int) -> Architecture:
    return Architecture(
        name=f"resnet{depth}",
        classifier=functools.partial(build_resnet, depth),
        backbone=functools.partial(resnet_backbone, depth),
        cam_layer=lambda model: model.layer4[-1],
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights=f"resnet{depth}-imagenet",
    )


ARCHITECTURES: dict[str, Architecture] = {
    "tf_efficientnet_lite0": Architecture(
        name="tf_efficientnet_lite0",
        classifier=build_efficientnet_lite0,
        backbone=efficientnet_lite0_backbone,
        cam_layer=lambda model: model.bn2,
        mean=EFFICIENTNET_LITE0_MEAN,
        std=EFFICIENTNET_LITE0_STD,
        weights="efficientnet-lite0-imagenet",
    ),
    "resnet50": _resnet(50),
    "resnet101": _resnet(101),
}


def architecture(name: str, choices: tuple[str, ...] = tuple(ARCHITECTURES), what: str = "architecture") -> Architecture:
    """The registered architecture ``name`` among ``choices``; ValueError naming them otherwise."""
    if name not in choices:
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(choices)}")
    return ARCHITECTURES[name]
