"""Reading and writing the files vscr keeps beside its stores: model folders, cam classifiers,
training checkpoints. Every way such a file can be damaged (missing, empty, truncated, malformed
JSON, a value of the wrong type or an unknown architecture, weights of another architecture, a
pickle that asks for more than tensors) becomes one :class:`~vscr_cli.errors.VscrError` line that
names the file and the problem. Weights are written with the mode of every output.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import safetensors.torch
import torch
from torch import nn

from vscr_cli.core.readout import PrototypeBank
from vscr_cli.errors import VscrError
from vscr_cli.errors import first_line
from vscr_cli.weights import WeightsError, load_local_state_dict, load_pickle

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


class Validating(Protocol):
    """A configuration that checks itself: ``validate()`` raises a VscrError for what it cannot be."""

    def validate(self) -> None: ...


def check_record(config: Validating, where: Path | str) -> None:
    """``config.validate()`` of a configuration read from the file ``where``: its refusal names the file."""
    try:
        config.validate()
    except VscrError as error:
        raise VscrError(f"{where}: {error}") from error


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
        state = load_pickle(path, device)
    except WeightsError:
        raise
    except (OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError) as error:
        raise VscrError(f"{path}: damaged checkpoint ({first_line(error)}); remove it to train from the start") from error
    if not isinstance(state, dict) or any(key not in state for key in required):
        raise VscrError(f"{path}: not a vscr training checkpoint; remove it to train from the start")
    return state


def save_weights(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    """Write a state dict as ``.safetensors`` (CPU, contiguous) into a folder being built, with the
    mode of every output (0o666 less the umask; safetensors' own writer makes it 0600)."""
    path.write_bytes(safetensors.torch.save({name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}))


def save_bank(folder: Path, bank: PrototypeBank) -> None:
    """Write ``bank`` into the model folder ``folder`` (being built)."""
    save_weights(folder / PROTOTYPES, {"prototypes": bank.prototypes.float(), "labels": bank.labels.long()})


def load_bank(folder: Path) -> PrototypeBank | None:
    """The prototype bank of a model folder, None when it has none."""
    path = folder / PROTOTYPES
    if not path.exists():
        return None
    state = load_local_state_dict(path)
    if set(state) != {"prototypes", "labels"} or state["prototypes"].ndim != 2 or state["labels"].shape != state["prototypes"].shape[:1]:
        raise VscrError(f"{path}: not a prototype bank (expected prototypes (M, D) and labels (M,))")
    return PrototypeBank(state["prototypes"], state["labels"])
