"""MiniGrid ``RedBlueDoorEnv``: open the red door, then the blue one; the wrong order fails."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Transition
from plastix.envs.grid.entities import BLUE, CLOSED, DOOR, OPEN, RED, STATE_CH, WALL_CELL, cell
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
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int) -> GridState:
    u = uniforms(key, 4)
    grid = walled_grid(2 * size, size)
    half = size // 2
    grid[half, :] = grid[half + size - 1, :] = WALL_CELL
    grid[half : half + size, 0] = grid[half : half + size, size - 1] = WALL_CELL
    grid = jnp.asarray(grid)
    agent = sample_cell(u[0], free_mask(grid) & region_mask(2 * size, size, half, 0, size, size))
    agent_dir = randint(u[1], 0, 4)
    red = jnp.stack([jnp.int32(half), randint(u[2], 1, size - 1)])
    blue = jnp.stack([jnp.int32(half + size - 1), randint(u[3], 1, size - 1)])
    grid = put(put(grid, red, cell(DOOR, RED, CLOSED)), blue, cell(DOOR, BLUE, CLOSED))
    return new_state(grid, agent, agent_dir, mission=mission("open_red_then_blue"),
                     target=jnp.concatenate([red, blue]))


def _open(state: GridState, pos: jax.Array) -> jax.Array:
    return state.grid[pos[0], pos[1], STATE_CH] == OPEN


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    red, blue = state.target[:2], state.target[2:]
    red_before, blue_before = _open(before, red), _open(before, blue)
    red_after, blue_after = _open(state, red), _open(state, blue)
    success = blue_after & red_before
    terminated = blue_after | (red_after & blue_before)
    reward = jnp.where(success, success_reward(state.step_count, max_steps), 0.0)
    return reward, terminated, success


def make(env_id: str, size: int = 8, max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-RedBlueDoors-*``: a ``2 size x size`` grid, ``max_steps = 20 * size**2``."""
    return GridEnv(env_id=env_id, width=2 * size, height=size, layout=partial(layout, size=size),
                   max_episode_steps=max_steps or 20 * size**2, rules=rules, **kwargs)


IDS = {f"MiniGrid-RedBlueDoors-{n}x{n}-v0": dict(size=n) for n in (6, 8)}
