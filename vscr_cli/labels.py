"""The A2D actor-action label space: ids, names, projections and colour palette.

A label id is ``10 * actor + action``; 0 is background and 255 is "ignore".
Actors are numbered 1..7 and actions 1..9 (``none`` = 9). Only the 43 ids that
occur in A2D are valid; every other id is mapped to :data:`IGNORE` by
:func:`sanitize`.
"""

from __future__ import annotations

import colorsys
from typing import Iterable

import numpy as np

BACKGROUND = 0
IGNORE = 255

ACTORS: tuple[str, ...] = ("adult", "baby", "ball", "bird", "car", "cat", "dog")
ACTIONS: tuple[str, ...] = (
    "climbing",
    "crawling",
    "eating",
    "flying",
    "jumping",
    "rolling",
    "running",
    "walking",
    "none",
)

VALID_IDS: tuple[int, ...] = (
    11, 12, 13, 15, 16, 17, 18, 19,
    21, 22, 26, 28, 29,
    34, 35, 36, 39,
    41, 43, 44, 45, 46, 48, 49,
    54, 55, 56, 57, 59,
    61, 63, 65, 66, 67, 68, 69,
    72, 73, 75, 76, 77, 78, 79,
)  # fmt: skip

#: Class index order used by models and confusion matrices: background, then the 43 ids.
CLASS_IDS: tuple[int, ...] = (BACKGROUND, *VALID_IDS)
NUM_CLASSES = len(CLASS_IDS)  # 44
NUM_ACTORS = len(ACTORS)  # 7
NUM_ACTIONS = len(ACTIONS)  # 9
#: Which classes' evidence counts for a video's tag: the tag's own class (``class``, SPML's restriction), or
#: also every other class of the tag's actor (``actor``): vscr predict --tag-votes, vscr refine --tag-votes.
TAG_VOTES = ("class", "actor")


def actor_of(label_id: int) -> int:
    """Actor number (1..7, 0 for background) of a label id."""
    return label_id // 10


def action_of(label_id: int) -> int:
    """Action number (1..9, 0 for background) of a label id."""
    return label_id % 10


def name_of(label_id: int) -> str:
    """``"dog-running"`` for 77, ``"background"`` for 0."""
    if label_id == BACKGROUND:
        return "background"
    if label_id not in VALID_IDS:
        raise ValueError(f"{label_id} is not a valid A2D actor-action id")
    return f"{ACTORS[actor_of(label_id) - 1]}-{ACTIONS[action_of(label_id) - 1]}"


def id_of(name: str) -> int:
    """Parse an actor-action name (``"dog-running"``) or a numeric id (``"77"``) into a valid id."""
    text = name.strip().lower()
    if text.isdigit():
        value = int(text)
    else:
        actor, sep, action = text.partition("-")
        if not sep or actor not in ACTORS or action not in ACTIONS:
            raise ValueError(
                f"unknown actor-action tag {name!r} (expected e.g. 'dog-running' or an A2D id like 77)"
            )
        value = 10 * (ACTORS.index(actor) + 1) + ACTIONS.index(action) + 1
    if value not in VALID_IDS:
        raise ValueError(f"tag {name!r} is not one of the 43 A2D actor-action classes")
    return value


def parse_tags(field: str) -> tuple[int, ...]:
    """Parse a ``;``-separated tag field (``"dog-walking;adult-none"``) into sorted unique ids."""
    parts = [p for p in field.replace(",", ";").split(";") if p.strip()]
    return tuple(sorted({id_of(p) for p in parts}))


def format_tags(tags: Iterable[int]) -> str:
    """Inverse of :func:`parse_tags`."""
    return ";".join(name_of(t) for t in sorted(tags))


def multi_hot(tags: Iterable[int]) -> np.ndarray:
    """Multi-hot vector over the 43 valid ids, shape (43,) float32."""
    vector = np.zeros(len(VALID_IDS), dtype=np.float32)
    for tag in tags:
        vector[VALID_IDS.index(tag)] = 1.0
    return vector


def action_multi_hot(tags: Iterable[int]) -> np.ndarray:
    """Multi-hot vector over the 9 actions of actor-action ids ``tags``, shape (9,) float32."""
    vector = np.zeros(NUM_ACTIONS, dtype=np.float32)
    for tag in tags:
        vector[action_of(tag) - 1] = 1.0
    return vector


def sanitize(label_map: np.ndarray) -> tuple[np.ndarray, int]:
    """Map every id that is neither background nor valid to IGNORE.

    Returns the cleaned uint8 map and the number of pixels that were changed.
    """
    valid = np.isin(label_map, CLASS_IDS)
    cleaned = np.where(valid, label_map, IGNORE).astype(np.uint8)
    return cleaned, int((~valid & (label_map != IGNORE)).sum())


def _lookup(values: dict[int, int]) -> np.ndarray:
    table = np.full(256, IGNORE, dtype=np.uint8)
    for key, value in values.items():
        table[key] = value
    return table


#: uint8 lookup tables: id -> class index (0..43), actor index (0..7), action index (0..9); 255 elsewhere.
CLASS_INDEX = _lookup({lid: i for i, lid in enumerate(CLASS_IDS)})
ACTOR_INDEX = _lookup({lid: actor_of(lid) for lid in CLASS_IDS})
ACTION_INDEX = _lookup({lid: action_of(lid) for lid in CLASS_IDS})


def _palette() -> np.ndarray:
    """(256, 3) uint8 colours: black background, white ignore, one hue per actor, shades per action."""
    colours = np.zeros((256, 3), dtype=np.uint8)
    colours[IGNORE] = (255, 255, 255)
    for lid in VALID_IDS:
        hue = (actor_of(lid) - 1) / NUM_ACTORS
        value = 1.0 - 0.55 * (action_of(lid) - 1) / (NUM_ACTIONS - 1)
        r, g, b = colorsys.hsv_to_rgb(hue, 0.85, value)
        colours[lid] = (round(255 * r), round(255 * g), round(255 * b))
    return colours


PALETTE = _palette()


def colorize(label_map: np.ndarray) -> np.ndarray:
    """(H, W) uint8 ids -> (H, W, 3) uint8 RGB image in the A2D palette."""
    return PALETTE[label_map]
