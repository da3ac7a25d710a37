"""The two-stream VSCR network (paper Sec. 3.1, Fig. 1).

Actor branch: an ImageNet backbone + torchvision's ASPP on the frame gives image features
(B, width, H/s, W/s) at output stride s (8 by default). Action branch: a motion encoder
(see motion.py) on the clip around the frame, projected by a two-layer MLP to ``width``,
expanded bilinearly and added to the image features; an action head (a 1x1 convolution) reads
per-location action logits off that projected motion (trained on the clip's action tags, see
stages/train/loop.py), the action branch's own recognition. Embedding head: a 1x1 convolution to
``embedding_dim`` channels, L2-normalised per pixel: the pixel embedding the contrastive
objective shapes. Segmentation head: a two-layer MLP (1x1 convolutions) over the embedding
giving logits over background + the 43 A2D classes. It is trained with cross-entropy on CAM
pseudo-labels over *detached* embeddings (as SPML trains its softmax classifier), so only the
contrastive terms shape the embedding and the head reads classes off it; ``head_gradient`` > 0 lets
that share of the head's gradient into the embedding (training's ``head_gradient`` setting).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.segmentation.deeplabv3 import ASPP

from vscr_cli.core.models.backbones import Backbone
from vscr_cli.core.models.motion import MotionFusion


@dataclass
class VSCROutput:
    embedding: Tensor  # (B, D, h, w) L2-normalised
    logits: Tensor  # (B, num_classes, h, w), computed from the embedding (detached unless head_gradient)
    actions: Tensor | None = None  # (B, num_actions, h, w) action logits of the projected motion (action head only)


class VSCRNet(nn.Module):
    """frames (B, 3, H, W) normalised RGB [+ motion input] -> VSCROutput at stride ``backbone.strides[-1]``;
    ``num_actions`` > 0 (with a motion encoder) adds the action head."""

    def __init__(
        self,
        backbone: Backbone,
        num_classes: int,
        embedding_dim: int = 64,
        width: int = 256,
        atrous_rates: tuple[int, int, int] = (6, 12, 18),
        motion_encoder: nn.Module | None = None,
        num_actions: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.aspp = ASPP(backbone.channels[-1], list(atrous_rates), out_channels=width)
        self.motion_encoder = motion_encoder
        self.fusion = MotionFusion(motion_encoder.channels, width) if motion_encoder is not None else None
        self.action_head = nn.Conv2d(width, num_actions, 1) if motion_encoder is not None and num_actions else None
        self.embed = nn.Conv2d(width, embedding_dim, 1)
        self.classifier = nn.Sequential(nn.Conv2d(embedding_dim, width, 1), nn.ReLU(inplace=True), nn.Conv2d(width, num_classes, 1))
        #: the share of the segmentation head's gradient that reaches the embedding (0: detached, SPML's)
        self.head_gradient = 0.0

    @property
    def stride(self) -> int:
        return self.backbone.strides[-1]

    def forward(self, frames: Tensor, motion: Tensor | None = None) -> VSCROutput:
        features = self.aspp(self.backbone(frames)[-1])
        actions = None
        if self.motion_encoder is not None:
            if motion is None:
                raise ValueError("this network has a motion branch: pass the motion input")
            projected = self.fusion(self.motion_encoder(motion), features.shape[-2:])
            features = features + projected
            if self.action_head is not None:
                actions = self.action_head(projected).float()
        embedding = F.normalize(self.embed(features).float(), dim=1)
        logits = self.classifier(scale_gradient(embedding, self.head_gradient))
        return VSCROutput(embedding, logits, actions)

    @torch.no_grad()
    def predict(self, frames: Tensor, motion: Tensor | None = None) -> Tensor:
        """Class probabilities at the input resolution: (B, num_classes, H, W)."""
        return upsample(self.forward(frames, motion).logits.float(), frames.shape[-2:]).softmax(dim=1)


def scale_gradient(tensor: Tensor, share: float) -> Tensor:
    """``tensor`` unchanged forwards, its gradient times ``share`` backwards (0: detached)."""
    detached = tensor.detach()
    return detached if not share else detached + share * (tensor - detached)


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, h, w) maps at the network's stride -> (B, C, H, W), bilinear: cell i lands on pixel
    (i + 0.5) H / h - 0.5 (see :func:`labels_at_cells`)."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def labels_at_cells(labels_map: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """(B, H, W) integer maps -> (B, h, w): cell i takes the pixel at its centre, floor((i + 0.5) H / h).

    Prediction upsamples cell i bilinearly (align_corners=False) to pixel (i + 0.5) H / h - 0.5, so
    the label must come from there; plain nearest resizing (pixel floor(i H / h)) would train the
    network to answer half a cell (3.5 px at stride 8) off.
    """
    height, width = labels_map.shape[-2:]
    rows = ((torch.arange(size[0], device=labels_map.device) + 0.5) * height / size[0]).long().clamp(max=height - 1)
    cols = ((torch.arange(size[1], device=labels_map.device) + 0.5) * width / size[1]).long().clamp(max=width - 1)
    return labels_map[:, rows][:, :, cols]
