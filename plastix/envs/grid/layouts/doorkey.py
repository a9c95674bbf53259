"""MiniGrid ``DoorKeyEnv``: a wall splits the room; a locked yellow door, its key on the agent's side."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.entities import DOOR, GOAL_CELL, KEY, LOCKED, WALL_CELL, YELLOW, cell
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    free_mask,
    put,
    randint,
    region_mask,
    sample_cell,
    uniforms,
    walled_grid,
)
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int) -> GridState:
    u = uniforms(key, 5)
    grid = put(jnp.asarray(walled_grid(size, size)), (size - 2, size - 2), GOAL_CELL)
    split = randint(u[0], 2, size - 2)
    grid = jnp.where((jnp.arange(size) == split)[:, None, None], jnp.asarray(WALL_CELL), grid)
    left = region_mask(size, size, 0, 0, split, size)
    agent = sample_cell(u[1], free_mask(grid) & left)
    agent_dir = randint(u[2], 0, 4)
    door_y = randint(u[3], 1, size - 2)
    grid = put(grid, (split, door_y), cell(DOOR, YELLOW, LOCKED))
    key_pos = sample_cell(u[4], free_mask(grid, agent) & left)
    grid = put(grid, key_pos, cell(KEY, YELLOW))
    return new_state(grid, agent, agent_dir)


def make(env_id: str, size: int = 8, max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-DoorKey-*``: ``max_steps = 10 * size**2``."""
    return GridEnv(
        env_id=env_id,
        width=size,
        height=size,
        layout=partial(layout, size=size),
        max_episode_steps=max_steps or 10 * size**2,
        **kwargs,
    )


IDS = {f"MiniGrid-DoorKey-{n}x{n}-v0": dict(size=n) for n in (5, 6, 8, 16)}
