"""MiniGrid ``EmptyEnv``: a walled room, goal in the bottom-right corner; fixed or random start."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.entities import GOAL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    free_mask,
    put,
    randint,
    sample_cell,
    uniforms,
    walled_grid,
)
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int, random_start: bool) -> GridState:
    grid = put(jnp.asarray(walled_grid(size, size)), (size - 2, size - 2), GOAL_CELL)
    if not random_start:
        return new_state(grid, jnp.array([1, 1]), 0)
    u = uniforms(key, 2)
    return new_state(grid, sample_cell(u[0], free_mask(grid)), randint(u[1], 0, 4))


def make(env_id: str, size: int = 8, random_start: bool = False, max_steps: int | None = None,
         **kwargs) -> GridEnv:
    """``MiniGrid-Empty-*``: ``max_steps = 4 * size**2``, see-through walls (as MiniGrid)."""
    return GridEnv(
        env_id=env_id,
        width=size,
        height=size,
        layout=partial(layout, size=size, random_start=random_start),
        max_episode_steps=max_steps or 4 * size**2,
        see_through_walls=True,
        **kwargs,
    )


IDS = {
    "MiniGrid-Empty-5x5-v0": dict(size=5),
    "MiniGrid-Empty-Random-5x5-v0": dict(size=5, random_start=True),
    "MiniGrid-Empty-6x6-v0": dict(size=6),
    "MiniGrid-Empty-Random-6x6-v0": dict(size=6, random_start=True),
    "MiniGrid-Empty-8x8-v0": dict(size=8),
    "MiniGrid-Empty-16x16-v0": dict(size=16),
}
