"""MiniGrid ``PlaygroundEnv``: 3x3 rooms joined by coloured doors, 12 random objects, no task."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.entities import CLOSED, DOOR, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    PICKUP_TYPES,
    free_mask,
    object_cell,
    put,
    randint,
    sample_cell,
    uniforms,
    walled_grid,
)
from plastix.envs.grid.state import GridState, new_state

NUM_OBJECTS = 12


def layout(key: jax.Array, size: int) -> GridState:
    u = uniforms(key, 24 + 2 + 3 * NUM_OBJECTS)
    room = size // 3
    grid = walled_grid(size, size)
    for k in (1, 2):
        grid[k * room, :] = WALL_CELL
        grid[:, k * room] = WALL_CELL
    grid = jnp.asarray(grid)
    door = lambda c: object_cell(DOOR, c, CLOSED)
    n = 0
    for j in range(3):  # MiniGrid's draw order: per room, the east door then the south door
        for i in range(3):
            x_left, y_top = i * room, j * room
            if i + 1 < 3:
                pos = (x_left + room, randint(u[n], y_top + 1, y_top + room - 1))
                grid = put(grid, pos, door(randint(u[n + 1], 0, 6)))
                n += 2
            if j + 1 < 3:
                pos = (randint(u[n], x_left + 1, x_left + room - 1), y_top + room)
                grid = put(grid, pos, door(randint(u[n + 1], 0, 6)))
                n += 2
    agent = sample_cell(u[n], free_mask(grid))
    agent_dir = randint(u[n + 1], 0, 4)
    n += 2
    for _ in range(NUM_OBJECTS):
        t, c = PICKUP_TYPES[randint(u[n], 0, 3)], randint(u[n + 1], 0, 6)
        pos = sample_cell(u[n + 2], free_mask(grid, agent))
        grid = put(grid, pos, object_cell(t, c))
        n += 3
    return new_state(grid, agent, agent_dir)


def make(env_id: str, max_steps: int = 100, **kwargs) -> GridEnv:
    """``MiniGrid-Playground-v0``: 19x19, ``max_steps = 100``, never rewarded."""
    return GridEnv(env_id=env_id, width=19, height=19, layout=partial(layout, size=19),
                   max_episode_steps=max_steps, **kwargs)


IDS = {"MiniGrid-Playground-v0": {}}
