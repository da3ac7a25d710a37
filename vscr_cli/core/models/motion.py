"""Motion encoders for the action branch (paper Fig. 1): a clip around a frame -> motion features.

Two encoders share one interface, ``forward(clip) -> (B, C, h, w)`` (a spatial motion map;
``h = w = 1`` when the encoder pools it to one vector per clip, as the paper's I3D does), and
are registered by name in ``MOTION_ENCODERS`` with the input they take (``none``: no action branch):

- ``FlowEncoder`` (the offline default): a small trainable CNN over the dense optical flow of
  the clip (OpenCV Farneback, computed by the data pipeline), input (B, 2 * (T - 1), H, W)
  flow stacks in pixels / ``vscr_cli.core.flow.FLOW_SCALE``. Needs no video-pretrained weights and sees motion
  directly, which a single RGB frame cannot show.
- ``I3DEncoder``: pytorchvideo's ``i3d_r50`` (the paper's Kinetics-400 I3D), frozen, fed an
  RGB clip (B, 3, T, H, W) normalised with Kinetics statistics; its res5 features (2048
  channels) averaged over time. Its Kinetics-400 state dict is given by the caller
  (vscr_cli.weights finds it).

The input of a clip (``clip_frames`` numbers its frames around the centre frame) is made by
``MotionEncoder.clip_input`` from its (H, W, 3) uint8 frames.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms._functional_tensor as functional_tensor
from torch import Tensor, nn

from vscr_cli.core.flow import flow_stack

KINETICS_MEAN = (0.45, 0.45, 0.45)
KINETICS_STD = (0.225, 0.225, 0.225)


class FlowEncoder(nn.Module):
    """Trainable CNN over optical-flow stacks: (B, 2 * (T - 1), H, W) -> (B, channels, H / 8, W / 8) (or pooled)."""

    def __init__(self, clip_length: int = 5, channels: int = 128, pooled: bool = False) -> None:
        super().__init__()
        width = 2 * (clip_length - 1)
        layers: list[nn.Module] = []
        for out in (32, 64, channels):
            layers += [nn.Conv2d(width, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
            width = out
        self.body = nn.Sequential(*layers)
        self.channels = channels
        self.pooled = pooled

    def forward(self, flow: Tensor) -> Tensor:
        features = self.body(flow)
        return features.mean(dim=(2, 3), keepdim=True) if self.pooled else features


def import_pytorchvideo_hub() -> ModuleType:
    """``pytorchvideo.models.hub``; pytorchvideo 0.1.5 imports a torchvision module that moved, aliased first."""
    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional_tensor)
    import pytorchvideo.models.hub

    return pytorchvideo.models.hub


class I3DEncoder(nn.Module):
    """Frozen I3D-R50 features: (B, 3, T, H, W) normalised RGB -> (B, 2048, H / 32, W / 32) (or pooled)."""

    channels = 2048

    def __init__(self, state_dict: Mapping[str, Tensor] | None = None, pooled: bool = True) -> None:
        super().__init__()
        network = import_pytorchvideo_hub().i3d_r50(pretrained=False)
        if state_dict is not None:
            network.load_state_dict(state_dict, strict=True)
        self.features = nn.Sequential(*network.blocks[:-1])  # stem, res2, pool, res3, res4, res5
        self.features.requires_grad_(False)
        self.pooled = pooled

    def train(self, mode: bool = True) -> I3DEncoder:
        super().train(mode)
        self.features.eval()  # frozen: batch-norm statistics stay Kinetics'
        return self

    def forward(self, clip: Tensor) -> Tensor:
        with torch.no_grad():
            features = self.features(clip).mean(dim=2)  # average over time
        return features.mean(dim=(2, 3), keepdim=True) if self.pooled else features


class MotionFusion(nn.Module):
    """Two-layer MLP from motion features to the image feature width, expanded to the image features'
    size (paper Fig. 1; the network adds it to them).

    motion (B, C, h, w) -> (B, width, h, w) by two 1x1 convolutions, then bilinearly resized to
    ``size`` (H, W): (B, width, H, W).
    """

    def __init__(self, motion_channels: int, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(motion_channels, width, 1), nn.ReLU(inplace=True), nn.Conv2d(width, width, 1))

    def forward(self, motion: Tensor, size: Sequence[int]) -> Tensor:
        return F.interpolate(self.mlp(motion), size=tuple(size), mode="bilinear", align_corners=False)


def clip_frames(center: int, total: int, length: int, stride: int) -> list[int]:
    """Frame numbers of the motion clip around ``center``, clamped to the video."""
    start = center - (length // 2) * stride
    return [min(max(start + i * stride, 0), total - 1) for i in range(length)]


def kinetics_clip(clip: Sequence[np.ndarray]) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (3, T, H, W) float32 normalised for Kinetics-trained I3D."""
    array = np.stack(clip).astype(np.float32) / 255
    array = (array - np.array(KINETICS_MEAN, np.float32)) / np.array(KINETICS_STD, np.float32)
    return array.transpose(3, 0, 1, 2)


@dataclass(frozen=True)
class MotionEncoder:
    """A registered motion encoder: ``build(clip_length, spatial, state)`` -> the module,
    ``clip_input(frames)`` -> its input for one clip of (H, W, 3) uint8 frames, ``mirror(inputs)``
    -> the (B, ...) inputs of the horizontally mirrored clips, ``weights`` the name of its
    pretrained weights in vscr_cli.weights (None: trained from scratch)."""

    name: str
    build: Callable[[int, bool, Mapping[str, Tensor] | None], nn.Module]
    clip_input: Callable[[Sequence[np.ndarray]], np.ndarray]
    mirror: Callable[[Tensor], Tensor]
    weights: str | None = None


def mirrored_flow(flow: Tensor) -> Tensor:
    """(..., 2 * (T - 1), H, W) flow stacks (x, y per pair) -> those of the mirrored clips: the
    columns reversed and every x displacement negated."""
    sign = torch.ones(flow.shape[-3], dtype=flow.dtype, device=flow.device)
    sign[0::2] = -1
    return flow.flip(-1) * sign[:, None, None]


#: The motion encoders by name; ``none`` (the ablation without an action branch) is not one.
MOTION_ENCODERS: dict[str, MotionEncoder] = {
    "flow": MotionEncoder("flow", lambda length, spatial, state: FlowEncoder(length, pooled=not spatial), flow_stack, mirrored_flow),
    "i3d": MotionEncoder("i3d", lambda length, spatial, state: I3DEncoder(state, pooled=not spatial), kinetics_clip, lambda clip: clip.flip(-1), "i3d-r50-kinetics400"),
}
