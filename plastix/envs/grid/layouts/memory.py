"""MiniGrid ``MemoryEnv``: see an object in the start room, walk the hallway, step next to the
matching one of two objects at its end. Pickup acts as toggle."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import BALL, GREEN, KEY, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import object_cell, put, randint, uniforms, walled_grid
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int, random_length: bool) -> GridState:
    u = uniforms(key, 4)
    mid, upper, lower = size // 2, size // 2 - 2, size // 2 + 2
    end = randint(u[0], 4, size - 2) if random_length else jnp.int32(size - 3)
    x = jnp.arange(size)[:, None, None]
    y = jnp.arange(size)[None, :, None]
    walls = (x >= 1) & (x <= 4) & ((y == upper) | (y == lower))
    walls |= (x == 4) & ((y == upper + 1) | (y == lower - 1))
    walls |= (x >= 5) & (x < end) & ((y == upper + 1) | (y == lower - 1))
    walls |= ((x == end) & (y != mid)) | (x == end + 2)
    grid = jnp.where(walls, jnp.asarray(WALL_CELL), jnp.asarray(walled_grid(size, size)))
    agent = jnp.stack([randint(u[1], 1, end + 1), jnp.int32(mid)])
    kinds = jnp.array([KEY, BALL])
    start_obj = kinds[randint(u[2], 0, 2)]
    first = kinds[randint(u[3], 0, 2)]  # the object above the hallway's end; the other goes below
    second = KEY + BALL - first
    green = lambda t: object_cell(t, GREEN)
    grid = put(grid, (1, mid - 1), green(start_obj))
    pos0 = jnp.stack([end + 1, jnp.int32(mid - 2)])
    pos1 = jnp.stack([end + 1, jnp.int32(mid + 2)])
    grid = put(put(grid, pos0, green(first)), pos1, green(second))
    near0, near1 = pos0 + jnp.array([0, 1]), pos1 - jnp.array([0, 1])
    match_first = start_obj == first
    success = jnp.where(match_first, near0, near1)
    failure = jnp.where(match_first, near1, near0)
    return new_state(grid, agent, 0, mission=mission("memory"),
                     target=jnp.concatenate([success, failure]))


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Reaching the cell next to the matching object succeeds; next to the other one fails."""
    del tr, before
    success = jnp.all(state.agent_pos == state.target[:2])
    failure = jnp.all(state.agent_pos == state.target[2:])
    reward = jnp.where(success, success_reward(state.step_count, max_steps), 0.0)
    return reward, success | failure, success


def make(env_id: str, size: int = 8, random_length: bool = False, max_steps: int | None = None,
         **kwargs) -> GridEnv:
    """``MiniGrid-MemoryS*``: ``max_steps = 5 * size**2``; odd sizes only."""
    if size % 2 == 0 or size < 7:
        raise ValueError(f"size: Memory needs an odd size >= 7, got {size}")
    remap = tuple(Action.TOGGLE if a == Action.PICKUP else int(a) for a in Action)
    return GridEnv(env_id=env_id, width=size, height=size,
                   layout=partial(layout, size=size, random_length=random_length),
                   max_episode_steps=max_steps or 5 * size**2, rules=rules, action_map=remap,
                   **kwargs)


IDS = {
    "MiniGrid-MemoryS17Random-v0": dict(size=17, random_length=True),
    "MiniGrid-MemoryS13Random-v0": dict(size=13, random_length=True),
    "MiniGrid-MemoryS13-v0": dict(size=13),
    "MiniGrid-MemoryS11-v0": dict(size=11),
    "MiniGrid-MemoryS9-v0": dict(size=9),
    "MiniGrid-MemoryS7-v0": dict(size=7),
}
