"""MiniGrid's two-room ``RoomGrid`` tasks: ``Unlock`` (open the locked door), ``UnlockPickup`` (then pick
up the box behind it) and ``BlockedUnlockPickup`` (a ball blocks the door first)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import BALL, BOX, DOOR, KEY, LOCKED, OPEN, STATE_CH, TYPE
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts import roomgrid
from plastix.envs.grid.layouts.common import object_cell, put, randint, uniforms
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state

ROOM = 6


def layout(key: jax.Array, task: str) -> GridState:
    u = uniforms(key, 9)
    grid = jnp.asarray(roomgrid.walls(ROOM, 1, 2))
    door_pos = roomgrid.east_door_pos(u[0], ROOM, 0, 0)
    default_agent = roomgrid.default_agent_pos(ROOM, 1, 2)
    box_color = randint(u[1], 0, 6)
    if task != "unlock":  # the box goes in first, in the right-hand room
        box_pos = roomgrid.place_in_room(u[2], grid, ROOM, 1, 0, default_agent)
        grid = put(grid, box_pos, object_cell(BOX, box_color))
    door_color = randint(u[3], 0, 6)
    grid = put(grid, door_pos, object_cell(DOOR, door_color, LOCKED))
    if task == "blocked":
        grid = put(grid, door_pos - jnp.array([1, 0]), object_cell(BALL, randint(u[4], 0, 6)))
    key_pos = roomgrid.place_in_room(u[5], grid, ROOM, 0, 0, default_agent)
    grid = put(grid, key_pos, object_cell(KEY, door_color))
    agent, agent_dir = roomgrid.place_agent(u[6], grid, ROOM, 0, 0)
    m = mission("open_door") if task == "unlock" else mission("pick_up", BOX, box_color)
    return new_state(grid, agent, agent_dir, mission=m,
                     target=jnp.stack([door_pos[0], door_pos[1], -1, -1]))


def unlock_rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Toggling while the door is open succeeds (as MiniGrid: any toggle once it is open)."""
    door = state.grid[state.target[0], state.target[1]]
    success = (tr.action == Action.TOGGLE) & (door[TYPE] == DOOR) & (door[STATE_CH] == OPEN)
    return jnp.where(success, success_reward(state.step_count, max_steps), 0.0), success, success


def pickup_rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Picking up (or holding, at a pickup action) the box succeeds: there is only one box."""
    success = (tr.action == Action.PICKUP) & (state.carrying[TYPE] == BOX)
    return jnp.where(success, success_reward(state.step_count, max_steps), 0.0), success, success


def make(env_id: str, task: str = "unlock", max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-Unlock-v0`` (8 x 6**2 steps), ``UnlockPickup-v0`` (8 x 6**2), ``BlockedUnlockPickup-v0``
    (16 x 6**2): two 6x6 rooms, 11x6 grid."""
    if task not in ("unlock", "pickup", "blocked"):
        raise ValueError(f"task: {task!r} is not one of unlock, pickup, blocked")
    width, height = roomgrid.size(ROOM, 1, 2)
    default_steps = (16 if task == "blocked" else 8) * ROOM**2
    return GridEnv(env_id=env_id, width=width, height=height, layout=partial(layout, task=task),
                   max_episode_steps=max_steps or default_steps,
                   rules=unlock_rules if task == "unlock" else pickup_rules, **kwargs)


IDS = {
    "MiniGrid-Unlock-v0": dict(task="unlock"),
    "MiniGrid-UnlockPickup-v0": dict(task="pickup"),
    "MiniGrid-BlockedUnlockPickup-v0": dict(task="blocked"),
}
