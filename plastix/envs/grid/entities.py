"""MiniGrid's index tables and the per-type rules (overlap, pickup, see-through) on encoded cells.

A cell is a ``uint8[5]``: (object, colour, state, contained object, contained colour). The first three
are exactly MiniGrid's ``WorldObj.encode()``; the last two hold a box's content (0 = nothing).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

OBJECTS = ("unseen", "empty", "wall", "floor", "door", "key", "ball", "box", "goal", "lava", "agent")
COLORS = ("red", "green", "blue", "purple", "yellow", "grey")
STATES = ("open", "closed", "locked")
OBJ = {name: i for i, name in enumerate(OBJECTS)}
COLOR = {name: i for i, name in enumerate(COLORS)}
STATE = {name: i for i, name in enumerate(STATES)}

UNSEEN, EMPTY, WALL, FLOOR, DOOR, KEY, BALL, BOX, GOAL, LAVA, AGENT = range(len(OBJECTS))
RED, GREEN, BLUE, PURPLE, YELLOW, GREY = range(len(COLORS))
OPEN, CLOSED, LOCKED = range(len(STATES))

CELL_CHANNELS = 5
TYPE, COLOR_CH, STATE_CH, CONTAINS_TYPE, CONTAINS_COLOR = range(CELL_CHANNELS)

# right, down, left, up: MiniGrid's DIR_TO_VEC as (dx, dy)
DIR_TO_VEC = jnp.array([[1, 0], [0, 1], [-1, 0], [0, -1]], dtype=jnp.int32)

# MiniGrid's default colour per type (Goal green, Lava red, Wall grey, Floor/Key/Ball blue).
DEFAULT_COLOR = {WALL: GREY, GOAL: GREEN, LAVA: RED, FLOOR: BLUE, KEY: BLUE, BALL: BLUE}


def cell(obj: int, color: int | None = None, state: int = 0, contains: tuple[int, int] = (0, 0)):
    """An encoded cell as a numpy ``uint8[5]`` (host-side constant)."""
    color = DEFAULT_COLOR.get(obj, 0) if color is None else color
    return np.array([obj, color, state, *contains], dtype=np.uint8)


EMPTY_CELL = cell(EMPTY, 0)
WALL_CELL = cell(WALL)
GOAL_CELL = cell(GOAL)
LAVA_CELL = cell(LAVA)


def can_overlap(c: jnp.ndarray) -> jnp.ndarray:
    """The agent may stand here: empty, floor, goal, lava, or an open door."""
    t = c[..., TYPE]
    return (
        (t == EMPTY) | (t == FLOOR) | (t == GOAL) | (t == LAVA) | ((t == DOOR) & (c[..., STATE_CH] == OPEN))
    )


def can_pickup(c: jnp.ndarray) -> jnp.ndarray:
    """Keys, balls and boxes can be carried."""
    t = c[..., TYPE]
    return (t == KEY) | (t == BALL) | (t == BOX)


def see_behind(c: jnp.ndarray) -> jnp.ndarray:
    """Walls and closed or locked doors block the view."""
    t = c[..., TYPE]
    return ~((t == WALL) | ((t == DOOR) & (c[..., STATE_CH] != OPEN)))
