"""A VSCR model's configuration and its folder's name and kind, as plain data: what ``vscr train``,
``vscr refine`` and ``vscr predict`` offer and check before they import the network
(:mod:`vscr_cli.model_folders` builds, saves and loads it)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vscr_cli.core.models.architectures import ARCHITECTURES, names
from vscr_cli.errors import VscrError

if TYPE_CHECKING:
    from vscr_cli.core.models.architectures import Architecture

#: The backbones a model may have: the registered architectures with the ``backbone`` capability.
BACKBONES = names("backbone")
#: The motion encoders: the names in ``core.models.motion.MOTION_ENCODERS`` (tests/test_settings.py
#: checks they agree), and ``none``, the ablation without an action branch.
NO_MOTION = "none"
MOTIONS = ("flow", "i3d", NO_MOTION)
MODEL_CONFIG = "config.json"
#: A model folder's training log: one JSON object per logged iteration (vscr train's StepLog).
MODEL_METRICS = "metrics.jsonl"
#: The model folder ``vscr train`` writes and ``vscr predict`` reads when ``-o`` / ``-m`` are not given.
DEFAULT_MODEL = Path("model")
#: The kind of output a model folder is to store.check_output (vscr train and vscr refine write one).
MODEL_KIND = "model"
PAPER_ATROUS_RATES = (6, 12, 18)  # DeepLabv3's rates at output stride 8 for the paper's crops
PAPER_CROP = 224
Config = TypeVar("Config", bound="ModelConfig")


def check_model_folder(folder: Path) -> None:
    """Refuse (one line) a folder that holds no trained model's record (its weights are checked when loaded)."""
    if not (folder / MODEL_CONFIG).is_file():
        raise VscrError(f"{folder}: not a trained vscr model (no {MODEL_CONFIG})")


def logged_steps(path: Path) -> list[dict[str, Any]]:
    """The rows of a training log (:data:`MODEL_METRICS`) that carry an integer ``iteration``, in file
    order; a line a kill cut short, or anything else, is skipped (none when the file is missing)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("iteration"), int):
            rows.append(row)
    return rows


@dataclass
class ModelConfig:
    """What determines the network: backbone, heads, motion branch, and the training crop the ASPP
    rates are scaled to."""

    crop: int = PAPER_CROP  # the paper's 224-px crops
    # the crop's side as a share of the frame height the network works at: taller frames are trained
    # and predicted at crop / crop_share rows (docs/train.md, "Working height"); 0: at the stores' height
    crop_share: float = 0.0
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
            raise VscrError("clip_length must be at least 2")
        if self.crop % self.output_stride:
            raise VscrError(f"--crop must be a multiple of the output stride ({self.output_stride})")
        if not 0 <= self.crop_share <= 1:
            raise VscrError("--crop-share must be in [0, 1]")
        if self.atrous_rates is not None:
            if len(self.atrous_rates) != 3 or min(self.atrous_rates) < 1:
                raise VscrError("atrous_rates must be three positive integers")
            self.atrous_rates = tuple(int(rate) for rate in self.atrous_rates)

    @property
    def input_height(self) -> int | None:
        """The most rows of a frame the network trains and predicts on (``crop / crop_share``, even);
        None (``crop_share`` 0): whatever height the frames have."""
        return None if not self.crop_share else 2 * round(self.crop / self.crop_share / 2)

    def working_height(self, height: int) -> int:
        """The height the network sees a frame of ``height`` rows at: :attr:`input_height` for a taller one."""
        return height if self.input_height is None else min(height, self.input_height)

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
        from vscr_cli.settings.records import config_from

        names = {f.name for f in fields(cls)}
        return config_from(cls, {key: value for key, value in record.items() if key in names}, where)
