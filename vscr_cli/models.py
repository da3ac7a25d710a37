"""The VSCR network as vscr trains, saves and loads it: its configuration, built from the
architecture and motion-encoder registries (``vscr_cli.core.models``), and the model folder.

A model folder holds ``model.safetensors`` (the weights) and ``config.json``::

    {"format": "vscr-model/1",
     "train": {...},             # the flat training record (TrainConfig.to_json): the model's fields and the rest
     "label_space": {"name": "a2d", "class_ids": [...]},
     "preprocessing": {"mean": [...], "std": [...], "flow_scale": 10.0},
     "frame_height": ..., "inputs": {...}}   # what training read

Training (``vscr_cli.stages.train``) writes it and prediction (``vscr_cli.stages.predict``) reads it,
both through this module.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from vscr_cli import labels, weights
from vscr_cli.checkpoints import check_record, config_from, fit_state, read_json, save_weights
from vscr_cli.core.flow import FLOW_SCALE
from vscr_cli.core.models.motion import MOTION_ENCODERS, NO_MOTION
from vscr_cli.core.models.registry import ARCHITECTURES, Architecture
from vscr_cli.core.models.vscr import VSCRNet
from vscr_cli.errors import VscrError

BACKBONES = tuple(ARCHITECTURES)
MOTIONS = (*MOTION_ENCODERS, NO_MOTION)
MODEL_FORMAT = "vscr-model/1"
MODEL_WEIGHTS = "model.safetensors"
MODEL_CONFIG = "config.json"
#: The model folder ``vscr train`` writes and ``vscr predict`` reads when ``-o`` / ``-m`` are not given.
DEFAULT_MODEL = Path("model")
#: The kind of output a model folder is to store.check_output (vscr train and vscr refine write one).
MODEL_KIND = "model"
PAPER_ATROUS_RATES = (6, 12, 18)  # DeepLabv3's rates at output stride 8 for the paper's crops
PAPER_CROP = 224
Config = TypeVar("Config", bound="ModelConfig")


@dataclass
class ModelConfig:
    """What determines the network: backbone, heads, motion branch, and the training crop the ASPP
    rates are scaled to."""

    crop: int = 224
    backbone: str = "tf_efficientnet_lite0"
    output_stride: int = 8
    embedding_dim: int = 64
    width: int = 256
    atrous_rates: tuple[int, ...] | None = None  # ASPP rates; None: the paper's (6, 12, 18) scaled to the crop's feature map
    motion: str = "flow"
    motion_spatial: bool = True
    clip_length: int = 5
    clip_stride: int = 2
    action_head: bool = True  # the action branch reads the clip's actions off its motion (trained on the action tags); models saved before it have none

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.backbone]

    def validate(self) -> None:
        if self.backbone not in BACKBONES:
            raise VscrError(f"unknown backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}")
        if self.motion not in MOTIONS:
            raise VscrError(f"unknown motion encoder {self.motion!r}; choose one of {', '.join(MOTIONS)}")
        if self.output_stride not in (8, 16, 32):
            raise VscrError("--output-stride must be 8, 16 or 32")
        if self.clip_length < 2:
            raise VscrError("--clip-length must be at least 2")
        if self.crop % self.output_stride:
            raise VscrError(f"--crop must be a multiple of the output stride ({self.output_stride})")
        if self.atrous_rates is not None:
            if len(self.atrous_rates) != 3 or min(self.atrous_rates) < 1:
                raise VscrError("atrous_rates must be three positive integers")
            self.atrous_rates = tuple(int(rate) for rate in self.atrous_rates)

    def aspp_rates(self) -> tuple[int, int, int]:
        """The ASPP atrous rates: given ones, or the paper's (6, 12, 18) for its 224-px crops at stride 8
        scaled to this crop's feature map, so every tap of every rate falls inside the training crop
        (at 96-px crops the 12x12 map would leave rates 12 and 18 all padding and untrained)."""
        if self.atrous_rates is not None:
            return tuple(self.atrous_rates)  # type: ignore[return-value]
        scale = (self.crop / self.output_stride) / (PAPER_CROP / 8)
        return tuple(max(1, round(rate * scale)) for rate in PAPER_ATROUS_RATES)  # type: ignore[return-value]

    def to_json(self) -> dict[str, Any]:
        """The record saved as ``config.json``'s ``train`` entry (subclasses add their fields)."""
        return asdict(self)

    @classmethod
    def from_record(cls: type[Config], record: Mapping[str, Any], where: Path | str) -> Config:
        """The configuration in a saved ``train`` record, whose other fields (training's) it leaves."""
        names = {f.name for f in fields(cls)}
        return config_from(cls, {key: value for key, value in record.items() if key in names}, where)


def build_model(config: ModelConfig, backbone_state: Mapping[str, torch.Tensor] | None = None, motion_state: Mapping[str, torch.Tensor] | None = None) -> VSCRNet:
    """The network of ``config``; ImageNet backbone and Kinetics I3D weights when given."""
    backbone = config.architecture.backbone(backbone_state, config.output_stride)
    encoder = MOTION_ENCODERS.get(config.motion)
    motion = encoder.build(config.clip_length, config.motion_spatial, motion_state) if encoder is not None else None
    actions = labels.NUM_ACTIONS if config.action_head else 0
    return VSCRNet(backbone, labels.NUM_CLASSES, config.embedding_dim, config.width, config.aspp_rates(), motion_encoder=motion, num_actions=actions)


def model_sha256(folder: Path) -> str:
    """sha256 of a model folder's weights ("" when it has none: loading then says what is wrong)."""
    return weights.sha256_file(folder / MODEL_WEIGHTS) if (folder / MODEL_WEIGHTS).is_file() else ""


def save_model(folder: Path, model: nn.Module, config: ModelConfig, extra: Mapping[str, Any]) -> None:
    """``model.safetensors`` + ``config.json`` (everything predict needs), written into the model
    folder being built (its staging folder, moved into place whole)."""
    save_weights(folder / MODEL_WEIGHTS, model.state_dict())
    record = {
        "format": MODEL_FORMAT,
        "train": config.to_json(),
        "label_space": {"name": "a2d", "class_ids": list(labels.CLASS_IDS)},
        "preprocessing": {"mean": config.architecture.mean, "std": config.architecture.std, "flow_scale": FLOW_SCALE},
        **extra,
    }
    (folder / MODEL_CONFIG).write_text(json.dumps(record, indent=2))


def load_model(folder: Path, device: torch.device, config_type: type[Config] = ModelConfig) -> tuple[VSCRNet, Config, dict[str, Any]]:
    """A model saved by :func:`save_model` (weights only, no pickles): the network, its
    ``config_type`` read from the ``train`` record (``TrainConfig`` for every training option) and
    the whole record."""
    if not (folder / MODEL_CONFIG).is_file():
        raise VscrError(f"{folder}: not a trained vscr model (no {MODEL_CONFIG})")
    record = read_json(folder / MODEL_CONFIG, required=("train",))
    recorded = record["train"]
    if not isinstance(recorded, Mapping):
        raise VscrError(f"{folder / MODEL_CONFIG}: malformed {config_type.__name__} record (not a mapping)")
    # models saved before the rates were scaled to the crop used the paper's; those saved before the action head have none
    recorded = {"atrous_rates": PAPER_ATROUS_RATES, "action_head": False, **recorded}
    config = config_type.from_record(recorded, folder / MODEL_CONFIG)
    check_record(config, folder / MODEL_CONFIG)
    state = weights.load_local_state_dict(folder / MODEL_WEIGHTS)
    model = build_model(config)
    fit_state(model, state, folder / MODEL_WEIGHTS, f"the {config.backbone} model its {MODEL_CONFIG} describes")
    return model.eval().to(device), config, record

