"""MiniGrid ``FourRoomsEnv``: a 19x19 grid split into four rooms joined by one gap per inner wall."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.entities import EMPTY_CELL, GOAL_CELL, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import free_mask, put, randint, sample_cell, uniforms, walled_grid
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int) -> GridState:
    u = uniforms(key, 7)
    half = size // 2
    grid = walled_grid(size, size)
    grid[half, :] = WALL_CELL
    grid[:, half] = WALL_CELL
    grid = jnp.asarray(grid)
    # gaps in the order MiniGrid draws them: (room 0,0) vertical + horizontal, (1,0) horizontal,
    # (0,1) vertical
    gaps = [
        (half, randint(u[0], 1, half)),
        (randint(u[1], 1, half), half),
        (randint(u[2], half + 1, 2 * half), half),
        (half, randint(u[3], half + 1, 2 * half)),
    ]
    for gap in gaps:
        grid = put(grid, gap, EMPTY_CELL)
    agent = sample_cell(u[4], free_mask(grid))
    agent_dir = randint(u[5], 0, 4)
    goal = sample_cell(u[6], free_mask(grid, agent))
    return new_state(put(grid, goal, GOAL_CELL), agent, agent_dir)


def make(env_id: str, max_steps: int = 100, **kwargs) -> GridEnv:
    """``MiniGrid-FourRooms-v0``: 19x19, ``max_steps = 100``."""
    return GridEnv(env_id=env_id, width=19, height=19, layout=partial(layout, size=19),
                   max_episode_steps=max_steps, **kwargs)


IDS = {"MiniGrid-FourRooms-v0": {}}
