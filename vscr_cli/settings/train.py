"""vscr train's options: every training option (:class:`TrainConfig`, flat on the command line, in
a ``--config`` TOML file and in a model's record) and the presets that fill them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from vscr_cli.core.params import ObjectiveConfig
from vscr_cli.errors import VscrError
from vscr_cli.settings.model import ModelConfig

#: The flat training options (TOML, command line, saved record) that set the objective (Eq. 4,
#: Table 3-5): option name -> ObjectiveConfig field. ``kmeans_grid`` G is the (G, G) grid.
OBJECTIVE_OPTIONS = {
    "edge_concentration": "edge_concentration",
    "cam_concentration": "cam_concentration",
    "tag_concentration": "tag_concentration",
    "edge_weight": "edge_weight",
    "cam_weight": "cam_weight",
    "tag_weight": "tag_weight",
    "use_edge": "use_edge",
    "use_tag": "use_tag",
    "use_unlabeled": "use_unlabeled",
    "kmeans_iterations": "iterations",
    "kmeans_grid": "grid",
}


@dataclass
class TrainConfig(ModelConfig):
    """Every training option: the model's (:class:`ModelConfig`), the objective's and the run's
    (presets fill these; any option overrides a preset). Options are flat: :meth:`options`."""

    # optimisation (paper Sec. 4.2)
    iterations: int = 40000
    batch_size: int = 10
    learning_rate: float = 8e-4
    momentum: float = 0.9
    weight_decay: float = 5e-4
    poly_power: float = 0.9
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    labeled_fraction: float = 1.0
    memory_iterations: int = 2
    tag_memory: bool = False  # the tag term also reads the memory bank (SPML); off: measured worse (docs/train.md, "The tag term")
    classifier_weight: float = 1.0
    action_weight: float = 0.3  # the action head's term (docs/train.md, "The action head and the two-stream video decision")
    new_layers_lr_scale: float = 10.0  # layers not from the pretrained backbone learn this much faster (DeepLab)
    # augmentation: each sample's window is crop / s pixels a side, s uniform in [scale_min, scale_max]
    scale_min: float = 1.0
    scale_max: float = 1.0
    # a window whose labelled pixels are one class, or more than this share one class, is redrawn
    # (up to stages.train.CROP_REDRAWS times; mmsegmentation's RandomCrop cat_max_ratio); 1 keeps every window
    crop_max_class_share: float = 1.0
    # run
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    workers: int = 0

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The flat option names: every field but ``objective``, and :data:`OBJECTIVE_OPTIONS`."""
        return (*(f.name for f in fields(cls) if f.name != "objective"), *OBJECTIVE_OPTIONS)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], where: Path | str) -> TrainConfig:
        """A configuration from flat options (a saved record, a TOML file, the command line's); a
        value of the wrong type is one error line naming ``where``."""
        from vscr_cli.checkpoints import config_from

        return config_from(cls, _nested(record), where)

    def to_json(self) -> dict[str, Any]:
        """The flat record (checkpoints, ``config.json``'s ``train``): :meth:`from_record` reads it back."""
        record = {name: value for name, value in asdict(self).items() if name != "objective"}
        record.update({name: getattr(self.objective, field_name) for name, field_name in OBJECTIVE_OPTIONS.items()})
        record["kmeans_grid"] = self.objective.grid[0]
        return record

    def validate(self) -> None:
        super().validate()
        if not 0 < self.labeled_fraction <= 1:
            raise VscrError("--labeled-fraction must be in (0, 1]")
        if not 0 < self.scale_min <= self.scale_max:
            raise VscrError("--scale-min and --scale-max must satisfy 0 < min <= max")
        if not 0 < self.crop_max_class_share <= 1:
            raise VscrError("--crop-max-class-share must be in (0, 1]")
        if self.action_head and self.action_weight <= 0:
            raise VscrError("--action-head needs --w-action above 0 (its only training); --no-action-head drops it")


def _nested(options: Mapping[str, Any]) -> dict[str, Any]:
    """Flat options -> TrainConfig's fields, the objective's gathered into one ObjectiveConfig's fields."""
    objective = {OBJECTIVE_OPTIONS[name]: value for name, value in options.items() if name in OBJECTIVE_OPTIONS}
    if "grid" in objective:
        objective["grid"] = (objective["grid"], objective["grid"])
    return {**{name: value for name, value in options.items() if name not in OBJECTIVE_OPTIONS}, "objective": objective}


#: Presets: ``paper`` is Sec. 4.2 (DeepLab ResNet-101 at output stride 8 + ASPP, Kinetics I3D);
#: ``cpu`` trains a useful model in minutes on 2 cores (96-px crops redrawn until they hold more than
#: one class, none above 3/4 of the labelled pixels: measured on davis-dev and the synthetic set).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"backbone": "resnet101", "motion": "i3d"},
    "cpu": {
        "iterations": 600,
        "batch_size": 8,
        "learning_rate": 0.01,
        "crop": 96,
        "crop_share": 0.6,  # frames above 160 rows train and predict at 160 (docs/train.md, "Working height", measured)
        "crop_max_class_share": 0.75,  # docs/train.md, "Crops that hold the actor" (measured)
        "checkpoint_every": 100,
        "log_every": 5,
    },
}


#: ``--preset auto``: the paper's settings where they are practical (CUDA), else ``cpu`` (docs/train.md, "Presets").
AUTO_PRESET = "auto"
