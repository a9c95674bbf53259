"""MiniGrid ``GoToObjectEnv``: distinct coloured keys / balls / boxes; stand next to the named one and
say ``done`` (same rules as GoToDoor)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    distinct_objects,
    free_mask,
    place_objects,
    randint,
    sample_cell,
    uniforms,
    walled_grid,
)
from plastix.envs.grid.layouts.gotodoor import rules
from plastix.envs.grid.missions import mission
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int, num_objs: int) -> GridState:
    k_pairs, k_u = jax.random.split(key)
    u = uniforms(k_u, num_objs + 3)
    types, colors = distinct_objects(k_pairs, num_objs)
    grid = jnp.asarray(walled_grid(size, size))
    grid, positions = place_objects(u, grid, types, colors)
    agent = sample_cell(u[num_objs], free_mask(grid))
    agent_dir = randint(u[num_objs + 1], 0, 4)
    target = randint(u[num_objs + 2], 0, num_objs)
    pos = positions[target]
    return new_state(grid, agent, agent_dir, mission=mission("go_to", types[target], colors[target]),
                     target=jnp.stack([pos[0], pos[1], -1, -1]))


def make(env_id: str, size: int = 6, num_objs: int = 2, max_steps: int | None = None,
         **kwargs) -> GridEnv:
    """``MiniGrid-GoToObject-*``: ``max_steps = 5 * size**2``, see-through walls."""
    return GridEnv(env_id=env_id, width=size, height=size,
                   layout=partial(layout, size=size, num_objs=num_objs),
                   max_episode_steps=max_steps or 5 * size**2, rules=rules, see_through_walls=True,
                   **kwargs)


IDS = {"MiniGrid-GoToObject-6x6-N2-v0": dict(size=6, num_objs=2),
       "MiniGrid-GoToObject-8x8-N2-v0": dict(size=8, num_objs=2)}
