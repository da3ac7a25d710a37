"""The VSCR network as vscr trains, saves and loads it: built from its configuration
(:class:`vscr_cli.settings.model.ModelConfig`) by the architecture and motion-encoder registries
(``vscr_cli.core.models``), and the model folder.

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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vscr_cli import labels, weights
from vscr_cli.checkpoints import check_record, fit_state, read_json, save_weights
from vscr_cli.core.flow import FLOW_SCALE
from vscr_cli.core.models.motion import MOTION_ENCODERS
from vscr_cli.core.models.vscr import VSCRNet
from vscr_cli.errors import VscrError
from vscr_cli.settings.model import MODEL_CONFIG, PAPER_ATROUS_RATES, Config, ModelConfig, check_model_folder

MODEL_FORMAT = "vscr-model/1"
MODEL_WEIGHTS = "model.safetensors"


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
    check_model_folder(folder)
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

