"""MiniGrid ``GoToDoorEnv``: a room of random size with four coloured doors; stand next to the named
one and say ``done``. ``toggle`` ends the episode without reward."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import CLOSED, DOOR, EMPTY_CELL, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    free_mask,
    object_cell,
    put,
    randint,
    region_mask,
    sample_cell,
    uniforms,
)
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int) -> GridState:
    k_colors, k_u = jax.random.split(key)
    u = uniforms(k_u, 9)
    w, h = randint(u[0], 5, size + 1), randint(u[1], 5, size + 1)
    x = jnp.arange(size)[:, None, None]
    y = jnp.arange(size)[None, :, None]
    border = ((x == 0) | (x == w - 1) | (y == 0) | (y == h - 1)) & (x < w) & (y < h)
    grid = jnp.where(border, jnp.asarray(WALL_CELL), jnp.asarray(EMPTY_CELL))
    doors = jnp.stack([
        jnp.stack([randint(u[2], 2, w - 2), jnp.int32(0)]),
        jnp.stack([randint(u[3], 2, w - 2), h - 1]),
        jnp.stack([jnp.int32(0), randint(u[4], 2, h - 2)]),
        jnp.stack([w - 1, randint(u[5], 2, h - 2)]),
    ])
    colors = jax.random.permutation(k_colors, 6)[:4]  # distinct colours in draw order
    for i in range(4):
        grid = put(grid, doors[i], object_cell(DOOR, colors[i], CLOSED))
    agent = sample_cell(u[6], free_mask(grid) & region_mask(size, size, 0, 0, w, h))
    agent_dir = randint(u[7], 0, 4)
    target = randint(u[8], 0, 4)
    pos = doors[target]
    return new_state(grid, agent, agent_dir, mission=mission("go_to", DOOR, colors[target]),
                     target=jnp.stack([pos[0], pos[1], -1, -1]))


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """``done`` next to the target door succeeds; ``done`` elsewhere or ``toggle`` ends the episode."""
    d = jnp.abs(state.agent_pos - state.target[:2])
    adjacent = ((d[0] == 0) & (d[1] == 1)) | ((d[1] == 0) & (d[0] == 1))
    done = tr.action == Action.DONE
    success = done & adjacent
    reward = jnp.where(success, success_reward(state.step_count, max_steps), 0.0)
    return reward, done | (tr.action == Action.TOGGLE), success


def make(env_id: str, size: int = 5, max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-GoToDoor-*``: ``max_steps = 4 * size**2``, see-through walls."""
    if size < 5:
        raise ValueError(f"size: GoToDoor needs size >= 5, got {size}")
    return GridEnv(env_id=env_id, width=size, height=size, layout=partial(layout, size=size),
                   max_episode_steps=max_steps or 4 * size**2, rules=rules,
                   see_through_walls=True, **kwargs)


IDS = {f"MiniGrid-GoToDoor-{n}x{n}-v0": dict(size=n) for n in (5, 6, 8)}
