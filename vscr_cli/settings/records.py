"""Typed configurations from recorded mappings (JSON records, TOML files): one checked reading
for every stage's settings, and one TOML printing of them (``--print-config``); light to import
(pydantic, tomli-w, no torch)."""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import pydantic

from vscr_cli.errors import VscrError, first_line

#: Packaged presets: ``presets/<stage>/<name>.toml``, each a partial tree of that stage's settings.
PRESET_FOLDER = Path(__file__).with_name("presets")

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


def toml_text(tree: Mapping[str, Any], title: str) -> str:
    """``tree`` (tables nested as mappings, tuples as lists) as TOML under a ``# title`` line; settings
    that are None (automatic: TOML has no null) are named in a comment instead."""
    import tomli_w

    automatic = [key for key, value in dotted(tree).items() if value is None]
    note = f"# automatic (not set): {', '.join(automatic)}\n" if automatic else ""
    return f"# {title}\n" + note + tomli_w.dumps(_without_none(plain(tree))).rstrip("\n") + "\n"


def plain(value: Any) -> Any:
    """Mappings and sequences of plain values as dicts and lists (JSON, TOML)."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    return [plain(item) for item in value] if isinstance(value, (list, tuple)) else value


def _without_none(tree: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _without_none(value) if isinstance(value, Mapping) else value for key, value in tree.items() if value is not None}


def read_toml(path: Path) -> dict[str, Any]:
    """The tree of a TOML file (a ``--config`` file, a preset)."""
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise VscrError(f"{path}: not a valid TOML file ({first_line(error)})") from error


def preset_names(stage: str) -> tuple[str, ...]:
    """The names of ``stage``'s packaged presets."""
    return tuple(sorted(path.stem for path in (PRESET_FOLDER / stage).glob("*.toml")))


def preset_tree(stage: str, name: str) -> dict[str, Any]:
    """The partial tree of ``stage``'s preset ``name``."""
    if name not in preset_names(stage):
        raise VscrError(f"unknown preset {name!r}; choose one of {', '.join(preset_names(stage))}")
    return read_toml(PRESET_FOLDER / stage / f"{name}.toml")


def tree_of(leaves: Mapping[str, Any]) -> dict[str, Any]:
    """``{"objective.use_edge": False, "crop": 96}`` -> ``{"objective": {"use_edge": False}, "crop": 96}``."""
    tree: dict[str, Any] = {}
    for key, value in leaves.items():
        *parents, leaf = key.split(".")
        node = tree
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return tree


def dotted(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A tree's leaves by dotted name: the inverse of :func:`tree_of`."""
    leaves: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            leaves.update(dotted(value, f"{prefix}{key}."))
        else:
            leaves[prefix + key] = value
    return leaves
