"""MiniGrid ``KeyCorridorEnv``: a corridor of rooms (the middle column, walls removed), a ball behind a
locked door on the right, its key in a room on the left; other doors by ``RoomGrid.connect_all``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import BALL, CLOSED, DOOR, EMPTY_CELL, KEY, LOCKED, TYPE
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts import roomgrid
from plastix.envs.grid.layouts.common import object_cell, put, randint, uniforms
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state

COLS = 3
MAX_CONNECT_ITERS = 5000  # MiniGrid's connect_all limit


def _door(color, state) -> jax.Array:
    return object_cell(DOOR, color, state)


def _reachable(east: jax.Array, south: jax.Array, start: int, rows: int) -> jax.Array:
    """Rooms (flattened j * COLS + i) reachable from ``start`` through open walls / doors."""
    n = rows * COLS
    adj = jnp.eye(n, dtype=bool)
    for j in range(rows):
        for i in range(COLS):
            a = j * COLS + i
            if i + 1 < COLS:
                adj = adj.at[a, a + 1].set(east[j, i]).at[a + 1, a].set(east[j, i])
            if j + 1 < rows:
                adj = adj.at[a, a + COLS].set(south[j, i]).at[a + COLS, a].set(south[j, i])
    reach = jnp.zeros(n, bool).at[start].set(True)
    for _ in range(n):
        reach = reach | jnp.any(reach[:, None] & adj, 0)
    return reach


def layout(key: jax.Array, room: int, rows: int) -> GridState:
    k_u, k_connect = jax.random.split(key)
    u = uniforms(k_u, 2 * rows * COLS + 8)
    grid = jnp.asarray(roomgrid.walls(room, rows, COLS))
    # RoomGrid's door positions: east[j, i] a row on room (i, j)'s east wall, south[j, i] a column
    east_y = jnp.stack([jnp.stack([randint(u[j * COLS + i], j * (room - 1) + 1, j * (room - 1) + room - 1)
                                   for i in range(COLS)]) for j in range(rows)])
    south_x = jnp.stack([jnp.stack([randint(u[rows * COLS + j * COLS + i], i * (room - 1) + 1,
                                            i * (room - 1) + room - 1)
                                    for i in range(COLS)]) for j in range(rows)])
    n = 2 * rows * COLS
    east_open = jnp.zeros((rows, COLS), bool)
    south_open = jnp.zeros((rows, COLS), bool)
    # the corridor: remove the walls between the middle column's rooms
    for j in range(1, rows):
        y = j * (room - 1)
        for x in range(room - 1 + 1, 2 * (room - 1)):
            grid = put(grid, (x, y), EMPTY_CELL)
        south_open = south_open.at[j - 1, 1].set(True)
    # the locked door on the west wall of room (2, r), i.e. the east wall of room (1, r)
    locked_row = randint(u[n], 0, rows)
    door_color = randint(u[n + 1], 0, 6)
    door_pos = jnp.stack([jnp.int32(2 * (room - 1)), east_y[locked_row, 1]])
    grid = put(grid, door_pos, _door(door_color, LOCKED))
    east_open = east_open.at[locked_row, 1].set(True)
    default_agent = roomgrid.default_agent_pos(room, rows, COLS)
    ball_color = randint(u[n + 2], 0, 6)
    ball_pos = _place(u[n + 3], grid, room, 2, locked_row, default_agent)
    grid = put(grid, ball_pos, object_cell(BALL, ball_color))
    key_row = randint(u[n + 4], 0, rows)
    key_pos = _place(u[n + 5], grid, room, 0, key_row, default_agent)
    grid = put(grid, key_pos, object_cell(KEY, door_color))
    agent, agent_dir = roomgrid.place_agent(u[n + 6], grid, room, 1, rows // 2)
    grid = _connect_all(k_connect, grid, east_open, south_open, east_y, south_x, room, rows,
                        locked_room=locked_row * COLS + 2, start=(rows // 2) * COLS + 1)
    return new_state(grid, agent, agent_dir, mission=mission("pick_up", BALL, ball_color))


def _place(u, grid, room, i, j, agent_pos):
    """``place_in_room`` for a traced room row ``j``."""
    return jax.lax.switch(j, [partial(roomgrid.place_in_room, room_size=room, i=i, j=r,
                                      agent_pos=agent_pos) for r in range(grid.shape[1] // (room - 1))],
                          u, grid)


def _connect_all(key, grid, east_open, south_open, east_y, south_x, room, rows, locked_room, start):
    """``RoomGrid.connect_all``: add unlocked doors on random walls until every room is reachable."""
    n = rows * COLS

    def cond(carry):
        _, east, south, _, it = carry
        return (~jnp.all(_reachable(east, south, start, rows))) & (it < MAX_CONNECT_ITERS)

    def body(carry):
        grid, east, south, key, it = carry
        key, k = jax.random.split(key)
        v = jax.random.uniform(k, (4,))
        i, j, wall = randint(v[0], 0, COLS), randint(v[1], 0, rows), randint(v[2], 0, 4)
        color = randint(v[3], 0, 6)
        # wall k of room (i, j) as an edge: 0 east, 1 south, 2 west (= east of i-1), 3 north
        ei = jnp.where(wall == 2, i - 1, i)
        ej = jnp.where(wall == 3, j - 1, j)
        horizontal = (wall == 0) | (wall == 2)
        exists = jnp.where(horizontal, (ei >= 0) & (ei < COLS - 1), (ej >= 0) & (ej < rows - 1))
        ci, cj = jnp.clip(ei, 0, COLS - 1), jnp.clip(ej, 0, rows - 1)
        already = jnp.where(horizontal, east[cj, ci], south[cj, ci])
        room_id = j * COLS + i
        neighbour = jnp.where(horizontal, cj * COLS + ci + jnp.where(wall == 0, 1, 0),
                              (cj + jnp.where(wall == 1, 1, 0)) * COLS + ci)
        neighbour = jnp.where(wall == 2, cj * COLS + ci, neighbour)
        neighbour = jnp.where(wall == 3, cj * COLS + ci, neighbour)
        locked = (room_id == locked_room) | (neighbour == locked_room)
        add = exists & ~already & ~locked
        pos = jnp.where(horizontal, jnp.stack([(ci + 1) * (room - 1), east_y[cj, ci]]),
                        jnp.stack([south_x[cj, ci], (cj + 1) * (room - 1)]))
        grid = jnp.where(add, put(grid, pos, _door(color, CLOSED)), grid)
        east = jnp.where(add & horizontal, east.at[cj, ci].set(True), east)
        south = jnp.where(add & ~horizontal, south.at[cj, ci].set(True), south)
        return grid, east, south, key, it + 1

    del n
    grid, *_ = jax.lax.while_loop(cond, body, (grid, east_open, south_open, key, 0))
    return grid


def rules(state: GridState, tr: Transition, max_steps: int, before: GridState):
    """Picking up (or holding, at a pickup action) the ball succeeds: there is only one ball."""
    success = (tr.action == Action.PICKUP) & (state.carrying[TYPE] == BALL)
    return jnp.where(success, success_reward(state.step_count, max_steps), 0.0), success, success


def make(env_id: str, room_size: int = 6, num_rows: int = 3, max_steps: int | None = None,
         **kwargs) -> GridEnv:
    """``MiniGrid-KeyCorridorS*R*``: 3 columns of rooms, ``max_steps = 30 * room_size**2``."""
    width, height = roomgrid.size(room_size, num_rows, COLS)
    return GridEnv(env_id=env_id, width=width, height=height,
                   layout=partial(layout, room=room_size, rows=num_rows),
                   max_episode_steps=max_steps or 30 * room_size**2, rules=rules, **kwargs)


IDS = {f"MiniGrid-KeyCorridorS{s}R{r}-v0": dict(room_size=s, num_rows=r)
       for s, r in ((3, 1), (3, 2), (3, 3), (4, 3), (5, 3), (6, 3))}
