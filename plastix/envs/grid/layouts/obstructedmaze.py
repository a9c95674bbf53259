"""MiniGrid ``ObstructedMaze``: find the blue ball behind locked doors whose keys may hide in boxes and
whose doors may be blocked by balls (``1Dl``...``Full``, and ``_V1`` which places keys after balls)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import (
    BALL,
    BLUE,
    BOX,
    CLOSED,
    COLOR_CH,
    CONTAINS_COLOR,
    CONTAINS_TYPE,
    DOOR,
    GREEN,
    GREY,
    KEY,
    LOCKED,
    TYPE,
)
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts import roomgrid
from plastix.envs.grid.layouts.common import object_cell, put, randint, uniforms
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state

ROOM = 6
DIR_TO_VEC = ((1, 0), (0, 1), (-1, 0), (0, -1))
SIDE_ROOMS = ((2, 1), (1, 2), (0, 1), (1, 0))
CORNERS = ((2, 0), (2, 2), (0, 2), (0, 0))


def _plan(rows: int, quarters: int, v1: bool) -> list[tuple]:
    """MiniGrid's build order: ("door", i, j, door_idx, colour slot, locked) and ("key", i, j, slot)."""
    if rows == 1:  # 1Dl*: one locked door between two rooms
        return [("door", 0, 0, 0, 0, True), ("key", 0, 0, 0)]
    plan = []
    for q, (i, j) in enumerate(SIDE_ROOMS[:quarters]):
        plan.append(("door", 1, 1, q, q, False))
        locked = [((q + k) % 4, (q + k) % 6) for k in (-1, 1)]
        for door_idx, slot in locked:
            plan.append(("door", i, j, door_idx, slot, True))
            if not v1:  # v0 hides each key right away: a later blocking ball may land on it
                plan.append(("key", i, j, slot))
        if v1:
            plan += [("key", i, j, slot) for _, slot in locked]
    return plan


def layout(key: jax.Array, rows: int, quarters: int, agent_room: tuple[int, int], key_in_box: bool,
           blocked: bool, v1: bool) -> GridState:
    cols = 2 if rows == 1 else 3
    plan = _plan(rows, quarters, v1)
    k_doors, k_colors, k_u = jax.random.split(key, 3)
    east_y, south_x = roomgrid.door_rows_cols(uniforms(k_doors, 2 * rows * cols), ROOM, rows, cols)
    colors = jax.random.permutation(k_colors, 6)  # ``_rand_subset(COLOR_NAMES, 6)``
    # MiniGrid's COLOR_NAMES is sorted: its [0], [1], [2] (target ball, blocking balls, boxes) are
    # blue, green and grey
    u = uniforms(k_u, len(plan) + 3)
    default_agent = roomgrid.default_agent_pos(ROOM, rows, cols)
    grid = jnp.asarray(roomgrid.walls(ROOM, rows, cols))
    for n, step in enumerate(plan):
        if step[0] == "door":
            _, i, j, door_idx, slot, locked = step
            pos = roomgrid.door_pos(east_y, south_x, ROOM, i, j, door_idx)
            grid = put(grid, pos, object_cell(DOOR, colors[slot], LOCKED if locked else CLOSED))
            if locked and blocked:
                grid = put(grid, pos - jnp.array(DIR_TO_VEC[door_idx]), object_cell(BALL, GREEN))
        else:
            _, i, j, slot = step
            obj = object_cell(KEY, colors[slot])
            if key_in_box:
                obj = object_cell(BOX, GREY).at[CONTAINS_TYPE].set(KEY).at[CONTAINS_COLOR].set(
                    colors[slot].astype(jnp.uint8))
            grid = put(grid, roomgrid.place_in_room(u[n], grid, ROOM, i, j, default_agent), obj)
    corners = [(1, 0)] if rows == 1 else CORNERS[:quarters]
    which = randint(u[-3], 0, len(corners))  # ``_rand_elem(corners)``, then place_in_room there
    ball_pos = jnp.stack([roomgrid.place_in_room(u[-2], grid, ROOM, i, j, default_agent)
                          for i, j in corners])[which]
    grid = put(grid, ball_pos, object_cell(BALL, BLUE))
    agent, agent_dir = roomgrid.place_agent(u[-1], grid, ROOM, *agent_room)
    return new_state(grid, agent, agent_dir, mission=mission("pick_up", BALL, BLUE))


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Picking up (or holding, at a pickup action) the blue ball succeeds; blocking balls are green."""
    success = ((tr.action == Action.PICKUP) & (state.carrying[TYPE] == BALL)
               & (state.carrying[COLOR_CH] == BLUE))
    return jnp.where(success, success_reward(state.step_count, max_steps), 0.0), success, success


def make(env_id: str, rows: int = 3, quarters: int = 4, agent_room: tuple[int, int] = (1, 1),
         key_in_box: bool = True, blocked: bool = True, rooms_visited: int = 25, v1: bool = False,
         max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-ObstructedMaze-*``: 6x6 rooms (1x2 for ``1D*``, else 3x3),
    ``max_steps = 4 * rooms_visited * 36``."""
    if rows not in (1, 3):
        raise ValueError(f"rows: ObstructedMaze has 1 (1D*) or 3 rows of rooms, got {rows}")
    if not 1 <= quarters <= 4:
        raise ValueError(f"quarters: must be in 1..4, got {quarters}")
    width, height = roomgrid.size(ROOM, rows, 2 if rows == 1 else 3)
    return GridEnv(env_id=env_id, width=width, height=height,
                   layout=partial(layout, rows=rows, quarters=quarters, agent_room=tuple(agent_room),
                                  key_in_box=key_in_box, blocked=blocked, v1=v1),
                   max_episode_steps=max_steps or 4 * rooms_visited * ROOM**2, rules=rules, **kwargs)


def _one_door(key_in_box: bool, blocked: bool) -> dict:
    return dict(rows=1, quarters=1, agent_room=(0, 0), key_in_box=key_in_box, blocked=blocked,
                rooms_visited=2)


def _full(agent_room, key_in_box, blocked, quarters, rooms_visited, v1=False) -> dict:
    return dict(rows=3, quarters=quarters, agent_room=agent_room, key_in_box=key_in_box, blocked=blocked,
                rooms_visited=rooms_visited, v1=v1)


IDS = {
    "MiniGrid-ObstructedMaze-1Dl-v0": _one_door(False, False),
    "MiniGrid-ObstructedMaze-1Dlh-v0": _one_door(True, False),
    "MiniGrid-ObstructedMaze-1Dlhb-v0": _one_door(True, True),
    "MiniGrid-ObstructedMaze-2Dl-v0": _full((2, 1), False, False, 1, 4),
    "MiniGrid-ObstructedMaze-2Dlh-v0": _full((2, 1), True, False, 1, 4),
    "MiniGrid-ObstructedMaze-2Dlhb-v0": _full((2, 1), True, True, 1, 4),
    "MiniGrid-ObstructedMaze-1Q-v0": _full((1, 1), True, True, 1, 5),
    "MiniGrid-ObstructedMaze-2Q-v0": _full((2, 1), True, True, 2, 11),
    "MiniGrid-ObstructedMaze-Full-v0": _full((1, 1), True, True, 4, 25),
    "MiniGrid-ObstructedMaze-2Dlhb-v1": _full((2, 1), True, True, 1, 4, v1=True),
    "MiniGrid-ObstructedMaze-1Q-v1": _full((1, 1), True, True, 1, 5, v1=True),
    "MiniGrid-ObstructedMaze-2Q-v1": _full((2, 1), True, True, 2, 11, v1=True),
    "MiniGrid-ObstructedMaze-Full-v1": _full((1, 1), True, True, 4, 25, v1=True),
}
