"""MiniGrid ``DynamicObstaclesEnv``: balls that step to a random free neighbour before every action.

Only left / right / forward exist (other actions act as left). Walking into a ball or a wall that was
in front of the agent *before* the balls moved ends the episode with reward -1, as in MiniGrid.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition, front_pos
from plastix.envs.grid.entities import BALL, BLUE, EMPTY, EMPTY_CELL, GOAL, GOAL_CELL, TYPE, cell
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
from plastix.envs.grid.rewards import goal_or_lava
from plastix.envs.grid.state import GridState, new_state

BALL_CELL = cell(BALL, BLUE)


def layout(key: jax.Array, size: int, n_obstacles: int, random_start: bool) -> GridState:
    u = uniforms(key, n_obstacles + 2)
    grid = put(jnp.asarray(walled_grid(size, size)), (size - 2, size - 2), GOAL_CELL)
    if random_start:
        agent, agent_dir = sample_cell(u[0], free_mask(grid)), randint(u[1], 0, 4)
    else:
        agent, agent_dir = jnp.array([1, 1]), jnp.int32(0)
    obstacles = []
    for i in range(n_obstacles):
        pos = sample_cell(u[2 + i], free_mask(grid, agent))
        grid = put(grid, pos, BALL_CELL)
        obstacles.append(pos)
    return new_state(grid, agent, agent_dir, objects=jnp.stack(obstacles))


def move_obstacles(key: jax.Array, state: GridState) -> GridState:
    """Each ball in turn jumps to a uniformly random free cell of its 3x3 neighbourhood (stays if none)."""
    u = uniforms(key, state.objects.shape[0])

    def step_one(grid, xs):
        pos, ui = xs
        window = region_mask(state.width, state.height, pos[0] - 1, pos[1] - 1, 3, 3)
        free = free_mask(grid, state.agent_pos) & window
        new = jnp.where(free.any(), sample_cell(ui, free), pos)
        moved = jnp.any(new != pos)
        grid = jnp.where(moved, put(put(grid, new, BALL_CELL), pos, EMPTY_CELL), grid)
        return grid, new

    grid, objects = jax.lax.scan(step_one, state.grid, (state.objects, u))
    return state.replace(grid=grid, objects=objects)


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """MiniGrid's goal reward, plus -1 and termination for walking into what blocked the way before."""
    reward, terminated, success = goal_or_lava(state, tr, max_steps)
    front = front_pos(before)
    front_type = before.grid[front[0], front[1], TYPE]
    collided = (tr.action == Action.FORWARD) & (front_type != EMPTY) & (front_type != GOAL)
    return jnp.where(collided, -1.0, reward), terminated | collided, success & ~collided


def make(env_id: str, size: int = 8, n_obstacles: int = 4, random_start: bool = False,
         max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-Dynamic-Obstacles-*``: ``max_steps = 4 * size**2``, 3 actions, see-through walls."""
    n = int(n_obstacles) if n_obstacles <= size / 2 + 1 else int(size / 2)
    return GridEnv(
        env_id=env_id, width=size, height=size,
        layout=partial(layout, size=size, n_obstacles=n, random_start=random_start),
        max_episode_steps=max_steps or 4 * size**2, rules=rules, world=move_obstacles,
        see_through_walls=True, num_actions=3,
        action_map=(0, 1, 2, 0, 0, 0, 0), **kwargs,
    )


IDS = {
    "MiniGrid-Dynamic-Obstacles-5x5-v0": dict(size=5, n_obstacles=2),
    "MiniGrid-Dynamic-Obstacles-Random-5x5-v0": dict(size=5, n_obstacles=2, random_start=True),
    "MiniGrid-Dynamic-Obstacles-6x6-v0": dict(size=6, n_obstacles=3),
    "MiniGrid-Dynamic-Obstacles-Random-6x6-v0": dict(size=6, n_obstacles=3, random_start=True),
    "MiniGrid-Dynamic-Obstacles-8x8-v0": dict(size=8, n_obstacles=4),
    "MiniGrid-Dynamic-Obstacles-16x16-v0": dict(size=16, n_obstacles=8),
}
