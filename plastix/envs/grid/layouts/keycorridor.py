"""MiniGrid ``KeyCorridorEnv``: a corridor of rooms (the middle column, walls removed), a ball behind a
locked door on the right, its key in a room on the left; other doors by ``RoomGrid.connect_all``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import BALL, CLOSED, DOOR, EMPTY_CELL, KEY, LOCKED, TYPE
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts import roomgrid
from plastix.envs.grid.layouts.common import object_cell, put, randint, sample_cell, uniforms
from plastix.envs.grid.missions import mission
from plastix.envs.grid.rewards import success_reward
from plastix.envs.grid.state import GridState, new_state

COLS = 3


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
    # RoomGrid's door cells: east_y[j, i] on room (i, j)'s east wall, south_x[j, i] on its south wall
    east_y, south_x = roomgrid.door_rows_cols(u[: 2 * rows * COLS], room, rows, COLS)
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
    ball_pos = roomgrid.place_in_room(u[n + 3], grid, room, 2, locked_row, default_agent)
    grid = put(grid, ball_pos, object_cell(BALL, ball_color))
    key_row = randint(u[n + 4], 0, rows)
    key_pos = roomgrid.place_in_room(u[n + 5], grid, room, 0, key_row, default_agent)
    grid = put(grid, key_pos, object_cell(KEY, door_color))
    agent, agent_dir = roomgrid.place_agent(u[n + 6], grid, room, 1, rows // 2)
    grid = _connect_all(k_connect, grid, east_open, south_open, east_y, south_x, room, rows,
                        locked_room=locked_row * COLS + 2, start=(rows // 2) * COLS + 1)
    return new_state(grid, agent, agent_dir, mission=mission("pick_up", BALL, ball_color))


def _connect_all(key, grid, east_open, south_open, east_y, south_x, room, rows, locked_room, start):
    """``RoomGrid.connect_all``: add unlocked doors on random walls until every room is reachable.

    MiniGrid draws (room, wall) triples and skips invalid ones (no neighbour, already open, touching the
    locked room); every wall is reachable from both of its rooms, so the accepted draw is uniform over
    the valid walls. Drawing from those directly gives the same law in at most one step per wall, a
    fixed-length scan instead of a data-dependent loop.
    """
    n_east, n_south = rows * (COLS - 1), (rows - 1) * COLS
    e_j, e_i = np.divmod(np.arange(n_east), COLS - 1)
    s_j, s_i = np.divmod(np.arange(n_south), COLS)
    a = jnp.asarray(np.concatenate([e_j * COLS + e_i, s_j * COLS + s_i]))  # the wall's two rooms
    b = a + jnp.asarray(np.concatenate([np.ones(n_east, int), np.full(n_south, COLS)]))
    touches_locked = (a == locked_room) | (b == locked_room)
    pos = jnp.concatenate([
        jnp.stack([jnp.asarray((e_i + 1) * (room - 1)), east_y[e_j, e_i]], -1),
        jnp.stack([south_x[s_j, s_i], jnp.asarray((s_j + 1) * (room - 1))], -1),
    ])
    steps = n_east + n_south
    u = jax.random.uniform(key, (steps, 2))

    def add_one(carry, ui):
        grid, east, south = carry
        is_open = jnp.concatenate([east[:, : COLS - 1].reshape(-1), south[: rows - 1].reshape(-1)])
        valid = ~is_open & ~touches_locked
        active = ~jnp.all(_reachable(east, south, start, rows)) & valid.any()
        edge = sample_cell(ui[0], valid[:, None])[0]
        color = randint(ui[1], 0, 6)
        grid = jnp.where(active, put(grid, pos[edge], _door(color, CLOSED)), grid)
        opened = jnp.where(active, is_open.at[edge].set(True), is_open)
        east = east.at[:, : COLS - 1].set(opened[:n_east].reshape(rows, COLS - 1))
        south = south.at[: rows - 1].set(opened[n_east:].reshape(rows - 1, COLS))
        return (grid, east, south), None

    (grid, _, _), _ = jax.lax.scan(add_one, (grid, east_open, south_open), u)
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
