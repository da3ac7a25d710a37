"""vscr train's configuration: one typed tree (:class:`TrainConfig`, the model's fields, the run's,
and the objective's under ``objective``), the presets that fill it (TOML files in ``presets/``), and
how a run's configuration is layered: the preset, then a ``--config`` file, then ``--set
key.sub=value`` items, then the command's own flags. The resolved tree is what a model records
(``config.json``'s ``train``) and what ``vscr train --print-config`` prints."""

from __future__ import annotations

import difflib
import functools
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from vscr_cli.core.params import ObjectiveConfig
from vscr_cli.errors import VscrError
from vscr_cli.settings.model import ModelConfig
from vscr_cli.settings.records import config_from, dotted, plain, preset_names, preset_tree, read_toml, toml_text, tree_of

#: ``--preset auto``: ``gpu`` (the paper's networks) where they are practical (CUDA), else ``cpu`` (docs/train.md, "Presets").
AUTO_PRESET = "auto"
#: Flat names of the objective's settings in records written before the tree (vscr <= 0.1 models and checkpoints).
_FLAT_OBJECTIVE = {
    **{name: name for name in ("edge_concentration", "cam_concentration", "tag_concentration", "edge_weight", "cam_weight", "tag_weight", "use_edge", "use_tag", "use_unlabeled")},
    "kmeans_iterations": "iterations",
    "kmeans_grid": "grid",
}


@dataclass
class TrainConfig(ModelConfig):
    """Every training setting: the model's (:class:`ModelConfig`), the optimisation's, the data's and
    the run's, and the objective of Eq. 4 under ``objective`` (:class:`ObjectiveConfig`)."""

    # optimisation (paper Sec. 4.2)
    iterations: int = 40000
    # training length per training frame: above 0, ``iterations`` is the least, raised to this many
    # crops a frame (:meth:`iterations_for`; the cpu preset's 50, docs/decisions/0039-training-length-per-frame.md);
    # a layer over the preset that sets ``iterations`` alone turns it off (:func:`resolve`)
    crops_per_frame: float = 0.0
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
    # the share of the segmentation head's cross-entropy gradient that reaches the embedding; 0: detached
    # (SPML's, the paper presets'); the cpu preset's 1 (docs/decisions/0032-head-gradient.md)
    head_gradient: float = 0.0
    action_weight: float = 0.3  # the action head's term (docs/train.md, "The action head and the two-stream video decision")
    new_layers_lr_scale: float = 10.0  # layers not from the pretrained backbone learn this much faster (DeepLab)
    # augmentation: each sample's window is crop / s pixels a side, s uniform in [scale_min, scale_max]
    scale_min: float = 1.0
    scale_max: float = 1.0
    # a window whose labelled pixels are one class, or more than this share one class, is redrawn
    # (up to stages.train.data.CROP_REDRAWS times; mmsegmentation's RandomCrop cat_max_ratio); 1 keeps every window
    crop_max_class_share: float = 1.0
    # run
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 10
    workers: int = 0

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """Every setting's dotted name (``crop``, ``objective.edge_concentration``)."""
        return tuple(_dotted_keys(cls))

    @classmethod
    def from_tree(cls, tree: Mapping[str, Any], where: Path | str) -> TrainConfig:
        """A configuration from a (partial) tree over the defaults; an unknown name (with the nearest
        known one) or a value of the wrong type is one error line naming ``where``."""
        check_keys(tree, where)
        return config_from(cls, tree, where)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], where: Path | str) -> TrainConfig:
        """The configuration a model or checkpoint recorded (:meth:`to_json`; a record of the flat
        names vscr 0.1 wrote is read too)."""
        return cls.from_tree(record if isinstance(record.get("objective"), Mapping) else _tree_of_flat(record), where)

    def to_json(self) -> dict[str, Any]:
        """The resolved tree as plain data (lists for tuples; None where a setting is automatic)."""
        return plain(asdict(self))

    def to_toml(self, title: str = "vscr train: the resolved settings") -> str:
        """The resolved tree as TOML (``--print-config``; a ``--config`` file reads it back)."""
        return toml_text(self.to_json(), title)

    def iterations_for(self, frames: int) -> int:
        """The iterations a run on ``frames`` training frames takes: ``iterations``, or with
        ``crops_per_frame`` above 0 at least ``crops_per_frame`` x ``frames`` / ``batch_size``, in
        whole ``checkpoint_every`` intervals (the nearest; the cpu preset: 99 frames 600, 170
        frames 1100)."""
        if self.crops_per_frame <= 0:
            return self.iterations
        intervals = round(self.crops_per_frame * frames / self.batch_size / self.checkpoint_every)
        return max(self.iterations, intervals * self.checkpoint_every)

    def validate(self) -> None:
        super().validate()
        if not 0 < self.labeled_fraction <= 1:
            raise VscrError("--labeled-fraction must be in (0, 1]")
        if not 0 < self.scale_min <= self.scale_max:
            raise VscrError("--scale-min and --scale-max must satisfy 0 < min <= max")
        if not 0 <= self.head_gradient <= 1:
            raise VscrError("--head-gradient must be in [0, 1]")
        if self.crops_per_frame < 0:
            raise VscrError("--crops-per-frame must be at least 0")
        if not 0 < self.crop_max_class_share <= 1:
            raise VscrError("--crop-max-class-share must be in (0, 1]")
        if self.action_head and self.action_weight <= 0:
            raise VscrError("--action-head needs --w-action above 0 (its only training); --no-action-head drops it")


def presets() -> tuple[str, ...]:
    """The names of the packaged training presets (``presets/train/*.toml``)."""
    return preset_names("train")


def parse_settings(items: Iterable[str]) -> dict[str, Any]:
    """``--set key.sub=value`` items -> a tree; each value is read as TOML (``0.5``, ``true``,
    ``[6, 12, 18]``, ``"flow"``), a bare word as a string (``motion=none``)."""
    tree: dict[str, Any] = {}
    for item in items:
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise VscrError(f"--set {item!r}: expected KEY=VALUE (e.g. --set objective.edge_weight=0.5)")
        try:
            value = tomllib.loads(f"value = {text.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        merge_into(tree, tree_of({key.strip(): value}))
    return tree


def merge_into(base: dict[str, Any], layer: Mapping[str, Any]) -> dict[str, Any]:
    """Lay ``layer`` over ``base`` in place, table by table; returns ``base``."""
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
    return base


def check_keys(tree: Mapping[str, Any], where: Path | str) -> None:
    """Refuse a tree with a name :class:`TrainConfig` does not have, naming the nearest one."""
    known = TrainConfig.keys()
    given = list(dotted(tree))
    unknown = [key for key in given if key not in known and not any(k.startswith(key + ".") for k in known)]
    if unknown:
        named = []
        for key in unknown:
            nearest = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or [k for k in known if k.endswith("." + key)][:1]
            named.append(f"{key} (did you mean {nearest[0]}?)" if nearest else key)
        raise VscrError(f"{where}: unknown training options: {', '.join(named)}")


def resolve(preset: str, config_file: Path | None = None, settings: Sequence[str] = (), flags: Mapping[str, Any] | None = None) -> TrainConfig:
    """The configuration of a run: ``preset``'s tree, then ``config_file``'s, then ``settings``
    (``--set`` items), then ``flags`` (dotted names -> values; the command line's own options), each
    checked against the tree, the result validated. Iterations set over the preset without
    ``crops_per_frame`` are exactly those: the preset's ``crops_per_frame`` is dropped."""
    layers = [(f"preset {preset}", preset_tree("train", preset))]
    if config_file is not None:
        layers.append((str(config_file), read_toml(config_file)))
    layers += [("--set", parse_settings(settings)), ("training options", tree_of(flags or {}))]
    tree: dict[str, Any] = {}
    for where, layer in layers:
        config = TrainConfig.from_tree(merge_into(tree, layer), where)  # each layer's names and types checked as it comes
    above_preset = [layer for _, layer in layers[1:]]
    if any("iterations" in layer for layer in above_preset) and not any("crops_per_frame" in layer for layer in above_preset):
        config = TrainConfig.from_tree(merge_into(tree, {"crops_per_frame": 0.0}), "training options")
    config.validate()
    return config


def preset_defaults(key: str) -> str:
    """How ``vscr train -h`` shows a setting's default: its value, or each preset's where they differ."""
    values = {name: _resolved_preset(name)[key] for name in presets()}
    if len({repr(value) for value in values.values()}) == 1:
        return _shown(next(iter(values.values())))
    return ", ".join(f"{_shown(value)} ({name})" for name, value in values.items())


@functools.cache
def _resolved_preset(name: str) -> dict[str, Any]:
    """Preset ``name``'s resolved settings by dotted name."""
    return dotted(resolve(name).to_json())


def _shown(value: Any) -> str:
    return "automatic" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _dotted_keys(cls: type, prefix: str = "") -> Iterable[str]:
    for item in fields(cls):
        kind = item.default_factory() if callable(item.default_factory) else None  # type: ignore[misc]
        if is_dataclass(kind):
            yield from _dotted_keys(type(kind), f"{prefix}{item.name}.")
        else:
            yield prefix + item.name


def _tree_of_flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """A vscr 0.1 record (the objective's settings flat, ``kmeans_grid`` G for the (G, G) grid) as a tree."""
    objective = {_FLAT_OBJECTIVE[name]: value for name, value in record.items() if name in _FLAT_OBJECTIVE}
    if isinstance(objective.get("grid"), int):
        objective["grid"] = [objective["grid"]] * 2
    return {**{name: value for name, value in record.items() if name not in _FLAT_OBJECTIVE}, "objective": objective}
