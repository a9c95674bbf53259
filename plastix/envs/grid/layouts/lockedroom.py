"""MiniGrid ``LockedRoomEnv``: a hallway between six rooms; the goal is behind one locked door and its
key lies in one of the other rooms."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import CLOSED, DOOR, GOAL_CELL, KEY, LOCKED, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    free_mask,
    object_cell,
    put,
    randint,
    region_mask,
    sample_cell,
    uniforms,
    walled_grid,
)
from plastix.envs.grid.missions import mission
from plastix.envs.grid.state import GridState, new_state


def _walls(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed walls; rooms' tops and door cells in MiniGrid's order (left, right, for each third)."""
    grid = walled_grid(size, size)
    left, right = size // 2 - 2, size // 2 + 2
    grid[left, :] = grid[right, :] = WALL_CELL
    tops, doors = [], []
    for n in range(3):
        j = n * (size // 3)
        grid[:left, j] = grid[right:, j] = WALL_CELL
        tops += [(0, j), (right, j)]
        doors += [(left, j + 3), (right, j + 3)]
    return grid, np.array(tops), np.array(doors)


def _in_room(u: jax.Array, tops: jax.Array, room, room_w: int, room_h: int) -> jax.Array:
    """``LockedRoom.rand_pos``: a uniform cell strictly inside the room."""
    top = tops[room]
    return jnp.stack([randint(u[0], top[0] + 1, top[0] + room_w - 1),
                      randint(u[1], top[1] + 1, top[1] + room_h - 1)])


def layout(key: jax.Array, size: int) -> GridState:
    walls, tops_np, doors_np = _walls(size)
    tops, doors = jnp.asarray(tops_np), jnp.asarray(doors_np)
    room_w, room_h = size // 2 - 1, size // 3 + 1
    k_u, k_colors = jax.random.split(key)
    u = uniforms(k_u, 8)
    locked = randint(u[0], 0, 6)
    grid = put(jnp.asarray(walls), _in_room(u[1:3], tops, locked, room_w, room_h), GOAL_CELL)
    colors = jax.random.permutation(k_colors, 6)  # drawn without replacement, room by room
    for room in range(6):
        state = jnp.where(locked == room, LOCKED, CLOSED)
        grid = put(grid, doors[room], object_cell(DOOR, colors[room], state))
    key_room = (locked + 1 + randint(u[3], 0, 5)) % 6  # uniform among the other rooms
    grid = put(grid, _in_room(u[4:6], tops, key_room, room_w, room_h), object_cell(KEY, colors[locked]))
    hallway = region_mask(size, size, size // 2 - 2, 0, 4, size)
    agent = sample_cell(u[6], free_mask(grid) & hallway)
    return new_state(grid, agent, randint(u[7], 0, 4),
                     mission=mission("locked_room", KEY, colors[locked], color2=colors[key_room]))


def make(env_id: str, size: int = 19, max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-LockedRoom-v0``: 19x19, ``max_steps = 10 * size``."""
    if size < 9:
        raise ValueError(f"size: LockedRoom needs size >= 9, got {size}")
    return GridEnv(env_id=env_id, width=size, height=size, layout=partial(layout, size=size),
                   max_episode_steps=max_steps or 10 * size, **kwargs)


IDS = {"MiniGrid-LockedRoom-v0": dict(size=19)}
