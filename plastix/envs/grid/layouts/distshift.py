"""MiniGrid ``DistShiftEnv``: two lava strips whose second row moves between the train/test variants."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.entities import GOAL_CELL, LAVA_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import walled_grid
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, width: int, height: int, strip2_row: int) -> GridState:
    grid = walled_grid(width, height)
    grid[width - 2, 1] = GOAL_CELL
    grid[3 : width - 3, 1] = LAVA_CELL
    grid[3 : width - 3, strip2_row] = LAVA_CELL
    return new_state(jnp.asarray(grid), jnp.array([1, 1]), 0)


def make(env_id: str, width: int = 9, height: int = 7, strip2_row: int = 2,
         max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-DistShift{1,2}``: ``max_steps = 4 * width * height``, see-through walls."""
    return GridEnv(env_id=env_id, width=width, height=height,
                   layout=partial(layout, width=width, height=height, strip2_row=strip2_row),
                   max_episode_steps=max_steps or 4 * width * height, see_through_walls=True,
                   **kwargs)


IDS = {"MiniGrid-DistShift1-v0": dict(strip2_row=2), "MiniGrid-DistShift2-v0": dict(strip2_row=5)}
