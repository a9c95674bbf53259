"""Import a Farama ``minigrid`` env's current state, so both implementations can step one layout."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from plastix.envs.grid import missions
from plastix.envs.grid.entities import CELL_CHANNELS, COLOR, EMPTY_CELL, OBJ
from plastix.envs.grid.state import GridState, new_state


def encode_object(obj: Any) -> np.ndarray:
    """A minigrid ``WorldObj`` (or None) as a plastix cell, box content included."""
    if obj is None:
        return EMPTY_CELL.copy()
    c = np.zeros(CELL_CHANNELS, np.uint8)
    c[:3] = obj.encode()
    inner = getattr(obj, "contains", None)
    if inner is not None:
        c[3], c[4] = OBJ[inner.type], COLOR[inner.color]
    return c


def _find(base: Any, obj: Any) -> tuple[int, int]:
    """(x, y) of a world object on a minigrid grid (objects placed with ``grid.set`` lack cur_pos)."""
    idx = next(i for i, o in enumerate(base.grid.grid) if o is obj)
    return idx % base.width, idx // base.width


def from_minigrid(env: Any) -> GridState:
    """A `GridState` equal to a reset (or stepped) ``minigrid`` env: grid, agent, carrying, steps."""
    base = env.unwrapped
    grid = np.stack(
        [
            np.stack([encode_object(base.grid.get(x, y)) for y in range(base.height)])
            for x in range(base.width)
        ]
    )
    state = new_state(jnp.asarray(grid), np.asarray(base.agent_pos), int(base.agent_dir))
    target = np.full(4, -1, np.int32)
    if getattr(base, "target_pos", None) is not None:  # GoToDoor
        target[:2] = base.target_pos
    door = getattr(base, "door", None)
    if door is not None and getattr(door, "cur_pos", None) is not None:  # Unlock family
        target[:2] = door.cur_pos
    if getattr(base, "success_pos", None) is not None:  # Memory
        target = np.array([*base.success_pos, *base.failure_pos], np.int32)
    if getattr(base, "red_door", None) is not None:  # RedBlueDoors
        target = np.array([*_find(base, base.red_door), *_find(base, base.blue_door)], np.int32)
    return state.replace(
        carrying=jnp.asarray(encode_object(base.carrying)),
        step_count=jnp.asarray(base.step_count, jnp.int32),
        mission=jnp.asarray(missions.encode(base.mission)),
        target=jnp.asarray(target),
    )
