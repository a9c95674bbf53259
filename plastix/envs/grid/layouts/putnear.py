"""MiniGrid ``PutNearEnv``: pick up the named object and drop it next to the other named one."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import EMPTY, TYPE
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
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state


def layout(key: jax.Array, size: int, num_objs: int) -> GridState:
    k_pairs, k_u = jax.random.split(key)
    u = uniforms(k_u, num_objs + 4)
    types, colors = distinct_objects(k_pairs, num_objs)
    grid = jnp.asarray(walled_grid(size, size))
    grid, positions = place_objects(u, grid, types, colors, apart=True)  # MiniGrid's reject_fn near_obj
    agent = sample_cell(u[num_objs], free_mask(grid))
    agent_dir = randint(u[num_objs + 1], 0, 4)
    move = randint(u[num_objs + 2], 0, num_objs)
    target = randint(u[num_objs + 3], 0, num_objs - 1)
    target = jnp.where(target >= move, target + 1, target)  # uniform over the others
    pos = positions[target]
    m = mission("put_near", types[move], colors[move], types[target], colors[target])
    return new_state(grid, agent, agent_dir, mission=m, target=jnp.stack([pos[0], pos[1], -1, -1]))


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Holding the wrong object after a pickup fails; any drop while carrying ends the episode,
    with reward if the object landed within one cell (8-neighbourhood) of the target."""
    holding = state.carrying[TYPE] != EMPTY
    wrong = (state.carrying[TYPE] != state.mission[1]) | (state.carrying[1] != state.mission[2])
    bad_pickup = (tr.action == Action.PICKUP) & holding & wrong
    dropping = (tr.action == Action.DROP) & (before.carrying[TYPE] != EMPTY)
    near = jnp.all(jnp.abs(tr.fwd_pos - state.target[:2]) <= 1)
    success = dropping & tr.dropped & near
    reward = jnp.where(success, success_reward(state.step_count, max_steps), 0.0)
    return reward, bad_pickup | dropping, success


def make(env_id: str, size: int = 6, num_objs: int = 2, max_steps: int | None = None,
         **kwargs) -> GridEnv:
    """``MiniGrid-PutNear-*``: ``max_steps = 5 * size``, see-through walls."""
    return GridEnv(env_id=env_id, width=size, height=size,
                   layout=partial(layout, size=size, num_objs=num_objs),
                   max_episode_steps=max_steps or 5 * size, rules=rules, see_through_walls=True,
                   **kwargs)


IDS = {"MiniGrid-PutNear-6x6-N2-v0": dict(size=6, num_objs=2),
       "MiniGrid-PutNear-8x8-N3-v0": dict(size=8, num_objs=3)}
