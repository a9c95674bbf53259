"""MiniGrid's ``RoomGrid`` building blocks: a lattice of walled rooms, doors between neighbours,
objects placed in a room away from the agent's default cell, and the agent placed in a room facing
an empty cell or a wall."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import EMPTY, TYPE, WALL, WALL_CELL
from plastix.envs.grid.layouts.common import free_mask, randint, region_mask, sample_cell, walled_grid


def size(room_size: int, rows: int, cols: int) -> tuple[int, int]:
    """(width, height) of the lattice."""
    return (room_size - 1) * cols + 1, (room_size - 1) * rows + 1


def walls(room_size: int, rows: int, cols: int) -> np.ndarray:
    """Every room's ``wall_rect``; the inside of the lattice is empty."""
    w, h = size(room_size, rows, cols)
    grid = walled_grid(w, h)
    for i in range(1, cols):
        grid[i * (room_size - 1), :] = WALL_CELL
    for j in range(1, rows):
        grid[:, j * (room_size - 1)] = WALL_CELL
    return grid


def room_top(room_size: int, i: int, j: int) -> tuple[int, int]:
    return i * (room_size - 1), j * (room_size - 1)


def east_door_pos(u: jax.Array, room_size: int, i: int, j: int) -> jax.Array:
    """``door_pos[0]`` of room (i, j): on its east wall, a random row inside the room."""
    x, y = room_top(room_size, i, j)
    return jnp.stack([jnp.int32(x + room_size - 1), randint(u, y + 1, y + room_size - 1)])


def default_agent_pos(room_size: int, rows: int, cols: int) -> tuple[int, int]:
    """Where ``RoomGrid._gen_grid`` leaves the agent (it matters to ``reject_next_to``)."""
    return ((cols // 2) * (room_size - 1) + room_size // 2,
            (rows // 2) * (room_size - 1) + room_size // 2)


def place_in_room(u: jax.Array, grid: jax.Array, room_size: int, i: int, j: int,
                  agent_pos) -> jax.Array:
    """``RoomGrid.place_in_room``: a free cell of room (i, j) at Manhattan distance >= 2 from
    ``agent_pos`` (and not on it)."""
    x, y = room_top(room_size, i, j)
    w, h = grid.shape[:2]
    xs, ys = jnp.arange(w)[:, None], jnp.arange(h)[None, :]
    far = jnp.abs(xs - agent_pos[0]) + jnp.abs(ys - agent_pos[1]) >= 2
    mask = free_mask(grid) & region_mask(w, h, x, y, room_size, room_size) & far
    return sample_cell(u, mask)


def place_agent(u: jax.Array, grid: jax.Array, room_size: int, i: int, j: int):
    """``RoomGrid.place_agent``: a uniformly random (cell, direction) of room (i, j) whose front cell
    is empty or a wall, the law of MiniGrid's retry loop."""
    x, y = room_top(room_size, i, j)
    w, h = grid.shape[:2]
    inside = free_mask(grid) & region_mask(w, h, x, y, room_size, room_size)
    padded = jnp.pad(grid[..., TYPE], 1, constant_values=WALL)
    fronts = jnp.stack([padded[2:, 1:-1], padded[1:-1, 2:], padded[:-2, 1:-1], padded[1:-1, :-2]], -1)
    ok = inside[..., None] & ((fronts == EMPTY) | (fronts == WALL))  # [W, H, 4 directions]
    idx = sample_cell(u, ok.reshape(w * h, 4))  # (cell index, direction)
    return jnp.stack([idx[0] // h, idx[0] % h]).astype(jnp.int32), idx[1]


def door_rows_cols(u: jax.Array, room_size: int, rows: int, cols: int) -> tuple[jax.Array, jax.Array]:
    """``RoomGrid._gen_grid``'s door cells from ``2 * rows * cols`` uniforms: ``east_y[j, i]``, the row of
    the door on room (i, j)'s east wall, and ``south_x[j, i]``, the column of the one on its south wall."""
    r = jnp.arange(rows)[:, None] * (room_size - 1)
    c = jnp.arange(cols)[None, :] * (room_size - 1)
    u = u.reshape(2, rows, cols)
    return randint(u[0], r + 1, r + room_size - 1), randint(u[1], c + 1, c + room_size - 1)


def door_pos(east_y: jax.Array, south_x: jax.Array, room_size: int, i: int, j: int, door_idx: int):
    """``room.door_pos[door_idx]`` of room (i, j): 0 east, 1 south, 2 west, 3 north (shared walls)."""
    if door_idx == 2:
        return door_pos(east_y, south_x, room_size, i - 1, j, 0)
    if door_idx == 3:
        return door_pos(east_y, south_x, room_size, i, j - 1, 1)
    x, y = room_top(room_size, i, j)
    if door_idx == 0:
        return jnp.stack([jnp.int32(x + room_size - 1), east_y[j, i]])
    return jnp.stack([south_x[j, i], jnp.int32(y + room_size - 1)])
