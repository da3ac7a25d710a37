"""The architectures vscr builds, by name (a timm-style registry): each knows how to build the
network as an actor classifier and as a segmentation backbone (its capabilities), the layer
Grad-CAM++ weighs, its input normalisation and its ImageNet weights (an entry of
:mod:`vscr_cli.weights`, resolved there; no file I/O here).

Each module of this package registers its architectures (:func:`register`) when imported, and
importing the package imports every module in it: a new backbone is one module here (and its
test). Light to import: the builders import torch, timm and torchvision only when called, so the
command line offers the names (``vscr cam --arch``, ``vscr train --backbone``) without them.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import Tensor, nn

    from vscr_cli.core.models.backbones import Backbone

#: What an architecture can be built as: an actor ``classifier`` (vscr cam), a dense ``backbone`` (vscr train).
CAPABILITIES = ("classifier", "backbone")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Architecture:
    """An ImageNet network. ``classifier(num_classes, imagenet_state)`` -> a module mapping (B, 3, H, W)
    to (B, num_classes) logits; ``backbone(imagenet_state, output_stride)`` -> :class:`Backbone`;
    ``cam_layer(classifier)`` -> its last convolutional stage; inputs are RGB in [0, 1] normalised
    with ``mean`` / ``std``; ``weights`` names its ImageNet file in :mod:`vscr_cli.weights`. A
    capability it lacks is None."""

    name: str
    description: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    weights: str
    classifier: Callable[[int, Mapping[str, Tensor] | None], nn.Module] | None = None
    backbone: Callable[[Mapping[str, Tensor] | None, int], Backbone] | None = None
    cam_layer: Callable[[nn.Module], nn.Module] | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        return tuple(name for name in CAPABILITIES if getattr(self, name) is not None)

    @property
    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return self.mean, self.std


ARCHITECTURES: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    """Add ``architecture`` to the registry (a name registered twice is a programming error)."""
    if architecture.name in ARCHITECTURES:
        raise ValueError(f"architecture {architecture.name!r} is registered twice")
    if architecture.classifier is not None and architecture.cam_layer is None:
        raise ValueError(f"architecture {architecture.name!r}: a classifier needs its cam_layer")
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def names(capability: str) -> tuple[str, ...]:
    """The registered architectures that can be built as ``capability`` (:data:`CAPABILITIES`), in registration order."""
    return tuple(name for name, entry in ARCHITECTURES.items() if capability in entry.capabilities)


def architecture(name: str, capability: str, what: str = "architecture") -> Architecture:
    """The registered architecture ``name`` that has ``capability``; ValueError naming the choices otherwise."""
    choices = names(capability)
    if name not in choices:
        raise ValueError(f"unknown {what} {name!r}; choose one of {', '.join(choices)}")
    return ARCHITECTURES[name]


def describe(capability: str) -> str:
    """``name: description`` of each architecture with ``capability`` (command-line help)."""
    return "; ".join(f"{name}: {ARCHITECTURES[name].description}" for name in names(capability))


def _load_modules() -> None:
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        importlib.import_module(f"{__name__}.{module.name}")


_load_modules()
