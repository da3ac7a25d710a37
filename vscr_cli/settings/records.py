"""Typed configurations from recorded mappings (JSON records, TOML files): one checked reading
for every stage's settings, light to import (pydantic, no torch)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from vscr_cli.errors import VscrError

T = TypeVar("T")


def config_from(cls: type[T], data: Mapping[str, Any], where: Path | str) -> T:
    """Dataclass ``cls`` from a recorded mapping (a JSON record, a TOML file), each value checked
    against its field's type (pydantic; a JSON list is a tuple field's tuple); an unknown field or a
    value of the wrong type is one error line naming ``where`` and the field."""
    if not isinstance(data, Mapping):
        raise VscrError(f"{where}: malformed {cls.__name__} record (not a mapping)")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown := sorted(set(data) - known):
        raise VscrError(f"{where}: unknown {cls.__name__} fields {', '.join(unknown[:5])} (written by another vscr version?)")
    try:
        return _adapter(cls).validate_python(dict(data))
    except pydantic.ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"])
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        given = repr(problem["input"])
        given = given if len(given) <= 60 else given[:57] + "..."
        raise VscrError(f"{where}: {field}: {problem['msg']}, not {given}{more}") from error


@functools.cache
def _adapter(cls: type[T]) -> pydantic.TypeAdapter[T]:
    return pydantic.TypeAdapter(cls)
