"""MiniGrid ``FetchEnv``: keys and balls of random colours; picking up anything ends the episode,
with reward only if it is the named type and colour."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Transition
from plastix.envs.grid.entities import BALL, EMPTY, KEY, TYPE
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    free_mask,
    place_objects,
    randint,
    sample_cell,
    uniforms,
    walled_grid,
)
from plastix.envs.grid.missions import FETCH_SYNTAX, mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state

TYPES = jnp.array([KEY, BALL])


def layout(key: jax.Array, size: int, num_objs: int) -> GridState:
    u = uniforms(key, 3 * num_objs + 4)
    grid = jnp.asarray(walled_grid(size, size))
    types = TYPES[randint(u[:num_objs], 0, 2)]
    colors = randint(u[num_objs: 2 * num_objs], 0, 6)
    grid, _ = place_objects(u[2 * num_objs:], grid, types, colors)
    n = 3 * num_objs
    agent = sample_cell(u[n], free_mask(grid))
    agent_dir = randint(u[n + 1], 0, 4)
    target = randint(u[n + 2], 0, num_objs)
    syntax = randint(u[n + 3], 0, len(FETCH_SYNTAX))
    m = mission("fetch", types[target], colors[target], extra=syntax)
    return new_state(grid, agent, agent_dir, mission=m)


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Carrying anything ends the episode; the named type and colour is a success."""
    holding = state.carrying[TYPE] != EMPTY
    right = (state.carrying[TYPE] == state.mission[1]) & (state.carrying[1] == state.mission[2])
    success = holding & right
    return jnp.where(success, success_reward(state.step_count, max_steps), 0.0), holding, success


def make(env_id: str, size: int = 8, num_objs: int = 3, max_steps: int | None = None,
         **kwargs) -> GridEnv:
    """``MiniGrid-Fetch-*``: ``max_steps = 5 * size**2``, see-through walls."""
    return GridEnv(env_id=env_id, width=size, height=size,
                   layout=partial(layout, size=size, num_objs=num_objs),
                   max_episode_steps=max_steps or 5 * size**2, rules=rules, see_through_walls=True,
                   **kwargs)


IDS = {"MiniGrid-Fetch-5x5-N2-v0": dict(size=5, num_objs=2),
       "MiniGrid-Fetch-6x6-N2-v0": dict(size=6, num_objs=2),
       "MiniGrid-Fetch-8x8-N3-v0": dict(size=8, num_objs=3)}
