"""Reading the files vscr writes beside its stores: model folders, cam classifiers, training
checkpoints. Every way such a file can be damaged (missing, empty, truncated, malformed JSON,
weights of another architecture) becomes one :class:`~vscr_cli.errors.VscrError` line that
names the file and the problem.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import safetensors.torch
import torch
from torch import nn

from vscr_cli.core.readout import PrototypeBank
from vscr_cli.errors import VscrError
from vscr_cli.weights import WeightsError, load_local_state_dict

T = TypeVar("T")
#: A model folder's prototype bank (vscr refine): ``prototypes`` (M, D) float32, ``labels`` (M,) int64.
PROTOTYPES = "prototypes.safetensors"


def read_json(path: Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON object from ``path`` that holds the ``required`` keys."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise VscrError(f"{path}: cannot read ({getattr(error, 'strerror', None) or error})") from error
    except ValueError as error:
        raise VscrError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise VscrError(f"{path}: expected a JSON object, found {type(data).__name__}")
    if missing := [key for key in required if key not in data]:
        raise VscrError(f"{path}: malformed, no {', '.join(map(repr, missing))} entry")
    return data


def config_from(cls: type[T], data: Mapping[str, Any], where: Path | str) -> T:
    """Dataclass ``cls`` from a recorded mapping; unknown or missing fields are one error line."""
    if not isinstance(data, Mapping):
        raise VscrError(f"{where}: malformed {cls.__name__} record (not a mapping)")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown := sorted(set(data) - known):
        raise VscrError(f"{where}: unknown {cls.__name__} fields {', '.join(unknown[:5])} (written by another vscr version?)")
    try:
        return cls(**data)
    except TypeError as error:
        raise VscrError(f"{where}: malformed {cls.__name__} record ({error})") from error


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file (or a plain ``.pt``/``.pth`` one)."""
    try:
        return load_local_state_dict(path)
    except WeightsError as error:
        raise VscrError(f"{path}: damaged or unreadable weights ({_first_line(error)})") from error


def fit_state(model: nn.Module, state: Mapping[str, torch.Tensor], where: Path | str, what: str) -> None:
    """Load ``state`` into ``model`` strictly; a mismatch is summarised in one line, not a key dump."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [key for key in expected if key in state and tuple(state[key].shape) != tuple(expected[key].shape)]
    if missing or unexpected or reshaped:
        example = (missing or unexpected or reshaped)[0]
        raise VscrError(
            f"{where}: weights do not fit {what} ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(reshaped)} of another shape; e.g. {example!r})"
        )
    model.load_state_dict(state)


def read_checkpoint(path: Path, device: torch.device, required: tuple[str, ...]) -> dict[str, Any]:
    """A training checkpoint (``torch.save`` of tensors and plain data, read with weights_only)."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as error:
        raise VscrError(f"{path}: damaged checkpoint ({_first_line(error)}); remove it to train from the start") from error
    if not isinstance(state, dict) or any(key not in state for key in required):
        raise VscrError(f"{path}: not a vscr training checkpoint; remove it to train from the start")
    return state


def save_bank(folder: Path, bank: PrototypeBank) -> None:
    """Write ``bank`` into the model folder ``folder`` (atomically)."""
    temporary = folder / f".{PROTOTYPES}.tmp"
    safetensors.torch.save_file({"prototypes": bank.prototypes.float().contiguous(), "labels": bank.labels.long().contiguous()}, temporary)
    temporary.replace(folder / PROTOTYPES)


def load_bank(folder: Path) -> PrototypeBank | None:
    """The prototype bank of a model folder, None when it has none."""
    path = folder / PROTOTYPES
    if not path.exists():
        return None
    state = read_weights(path)
    if set(state) != {"prototypes", "labels"} or state["prototypes"].ndim != 2 or state["labels"].shape != state["prototypes"].shape[:1]:
        raise VscrError(f"{path}: not a prototype bank (expected prototypes (M, D) and labels (M,))")
    return PrototypeBank(state["prototypes"], state["labels"])


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line if len(line) <= 160 else line[:157] + "..."
