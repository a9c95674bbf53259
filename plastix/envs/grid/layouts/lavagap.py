"""MiniGrid ``LavaGapEnv``: a vertical strip of lava with one gap between the agent and the goal."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.entities import EMPTY_CELL, GOAL_CELL, LAVA_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import put, randint, uniforms, walled_grid
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int) -> GridState:
    u = uniforms(key, 2)
    grid = put(jnp.asarray(walled_grid(size, size)), (size - 2, size - 2), GOAL_CELL)
    gap_x, gap_y = randint(u[0], 2, size - 2), randint(u[1], 1, size - 1)
    x = jnp.arange(size)[:, None, None]
    y = jnp.arange(size)[None, :, None]
    strip = (x == gap_x) & (y >= 1) & (y <= size - 2)
    grid = jnp.where(strip, jnp.asarray(LAVA_CELL), grid)
    grid = put(grid, (gap_x, gap_y), EMPTY_CELL)
    return new_state(grid, jnp.array([1, 1]), 0)


def make(env_id: str, size: int = 7, max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-LavaGapS*``: ``max_steps = 4 * size**2``; stepping into lava ends the episode."""
    return GridEnv(env_id=env_id, width=size, height=size, layout=partial(layout, size=size),
                   max_episode_steps=max_steps or 4 * size**2, **kwargs)


IDS = {f"MiniGrid-LavaGapS{n}-v0": dict(size=n) for n in (5, 6, 7)}
