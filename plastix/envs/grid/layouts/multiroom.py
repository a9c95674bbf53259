"""MiniGrid ``MultiRoomEnv``: a chain of rooms joined by closed doors, the goal in the last room.

MiniGrid builds the chain with a recursive ``_placeRoom``: each placed room tries up to 8 random exits
for the next room and keeps the first that fits; whole chains are redrawn until one reaches the wanted
number of rooms. A successful child ends its parent's loop, so the recursion is a linear chain: here one
attempt is an unrolled loop over rooms with the 8 tries drawn at once, and ``ATTEMPTS`` chains are drawn
per ``while_loop`` iteration, the first full one kept (the law of MiniGrid's redraw loop).
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import CELL_CHANNELS, CLOSED, DOOR, EMPTY_CELL, GOAL_CELL, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import (
    free_mask,
    object_cell,
    put,
    randint,
    region_mask,
    sample_cell,
    uniforms,
)
from plastix.envs.grid.state import GridState, new_state

SIZE = 25
MIN_ROOM = 4
TRIES = 8
ATTEMPTS = 16
# the walls other than the entry wall, in ``sorted(wallSet)`` order (0 right, 1 south, 2 left, 3 north)
_EXITS = jnp.asarray(np.array([[w for w in range(4) if w != entry] for entry in range(4)]))


def _fits(top, size, tops, sizes, earlier) -> jax.Array:
    """``_placeRoom``'s checks: inside the map and clear of the rooms before the parent."""
    inside = (top >= 0).all() & (top[0] + size[0] <= SIZE) & (top[1] + size[1] < SIZE)
    apart = ((top[0] + size[0] < tops[:, 0]) | (tops[:, 0] + sizes[:, 0] <= top[0])
             | (top[1] + size[1] < tops[:, 1]) | (tops[:, 1] + sizes[:, 1] <= top[1]))
    return inside & (apart | ~earlier).all()


def _child(u: jax.Array, entry_wall, top, size, tops, sizes, earlier, max_room: int):
    """One try at the next room: (fits, its top, its size, the door between, its entry wall)."""
    exit_wall = _EXITS[entry_wall, randint(u[0], 0, 3)]
    along = randint(u[1], 1, jnp.where(exit_wall % 2 == 0, size[1], size[0]) - 1)
    far = top + size - 1
    door = jnp.select([exit_wall == 0, exit_wall == 1, exit_wall == 2],
                      [jnp.stack([far[0], top[1] + along]), jnp.stack([top[0] + along, far[1]]),
                       jnp.stack([top[0], top[1] + along])],
                      jnp.stack([top[0] + along, top[1]]))
    child_size = jnp.stack([randint(u[2], MIN_ROOM, max_room + 1), randint(u[3], MIN_ROOM, max_room + 1)])
    entry = (exit_wall + 2) % 4
    # the door's coordinate along the child's entry wall lies strictly inside that wall
    slide = door - randint(u[4], 0, child_size - 2) - 1
    child_top = jnp.select([entry == 0, entry == 1, entry == 2],
                           [jnp.stack([door[0] - child_size[0] + 1, slide[1]]),
                            jnp.stack([slide[0], door[1] - child_size[1] + 1]),
                            jnp.stack([door[0], slide[1]])],
                           jnp.stack([slide[0], door[1]]))
    return _fits(child_top, child_size, tops, sizes, earlier), child_top, child_size, door, entry


def _chain(key: jax.Array, n_rooms, max_rooms: int, max_room: int):
    """One top-level ``_placeRoom`` call: rooms' tops, sizes, entry doors, and how many were placed."""
    k_first, k_next = jax.random.split(key)
    u = uniforms(k_first, 4)
    top = jnp.stack([randint(u[0], 0, SIZE - 2), randint(u[1], 0, SIZE - 2)])
    size = jnp.stack([randint(u[2], MIN_ROOM, max_room + 1), randint(u[3], MIN_ROOM, max_room + 1)])
    tops = jnp.zeros((max_rooms, 2), jnp.int32).at[0].set(top)
    sizes = jnp.ones((max_rooms, 2), jnp.int32).at[0].set(size)
    doors = jnp.zeros((max_rooms, 2), jnp.int32)
    alive = _fits(top, size, tops, sizes, jnp.zeros(max_rooms, bool))
    count = alive.astype(jnp.int32)
    entry_wall = jnp.int32(2)
    tries = jax.vmap(_child, in_axes=(0,) + (None,) * 7)
    u_next = jax.random.uniform(k_next, (max_rooms, TRIES, 5))
    for k in range(1, max_rooms):
        earlier = jnp.arange(max_rooms) < k - 1
        fits, c_top, c_size, door, c_entry = tries(u_next[k], entry_wall, tops[k - 1], sizes[k - 1],
                                                   tops, sizes, earlier, max_room)
        first = jnp.argmax(fits)
        alive = alive & (k < n_rooms) & fits.any()
        tops = tops.at[k].set(jnp.where(alive, c_top[first], 0))
        sizes = sizes.at[k].set(jnp.where(alive, c_size[first], 1))
        doors = doors.at[k].set(door[first])
        entry_wall = c_entry[first]
        count = count + alive
    return tops, sizes, doors, count


def _rooms(key: jax.Array, n_rooms, max_rooms: int, max_room: int):
    """The first chain with ``n_rooms`` rooms among repeated independent attempts."""
    chains = jax.vmap(partial(_chain, n_rooms=n_rooms, max_rooms=max_rooms, max_room=max_room))

    def attempt(carry):
        key, _, _, _, _ = carry
        key, sub = jax.random.split(key)
        tops, sizes, doors, count = chains(jax.random.split(sub, ATTEMPTS))
        full = count == n_rooms
        first = jnp.argmax(full)
        return key, full.any(), tops[first], sizes[first], doors[first]

    empty = jnp.zeros((max_rooms, 2), jnp.int32)
    init = (key, jnp.bool_(False), empty, empty, empty)
    _, _, tops, sizes, doors = jax.lax.while_loop(lambda c: ~c[1], attempt, init)
    return tops, sizes, doors


def layout(key: jax.Array, min_rooms: int, max_rooms: int, max_room: int) -> GridState:
    k_n, k_rooms, k_u = jax.random.split(key, 3)
    u = uniforms(k_u, max_rooms + 3)
    n_rooms = jax.random.randint(k_n, (), min_rooms, max_rooms + 1)
    tops, sizes, doors = _rooms(k_rooms, n_rooms, max_rooms, max_room)
    grid = jnp.broadcast_to(jnp.asarray(EMPTY_CELL), (SIZE, SIZE, CELL_CHANNELS))
    color = randint(u[0], 0, 6)
    for idx in range(max_rooms):
        active = idx < n_rooms
        (x, y), (w, h) = tops[idx], sizes[idx]
        outline = (region_mask(SIZE, SIZE, x, y, w, h)
                   & ~region_mask(SIZE, SIZE, x + 1, y + 1, w - 2, h - 2))
        grid = jnp.where((active & outline)[..., None], jnp.asarray(WALL_CELL), grid)
        if idx > 0:  # a colour other than the previous door's
            color = color if idx == 1 else (color + 1 + randint(u[idx], 0, 5)) % 6
            grid = jnp.where(active, put(grid, doors[idx], object_cell(DOOR, color, CLOSED)), grid)
    first = region_mask(SIZE, SIZE, tops[0, 0], tops[0, 1], sizes[0, 0], sizes[0, 1])
    agent = sample_cell(u[max_rooms], free_mask(grid) & first)
    agent_dir = randint(u[max_rooms + 1], 0, 4)
    last_top, last_size = tops[n_rooms - 1], sizes[n_rooms - 1]
    last = region_mask(SIZE, SIZE, last_top[0], last_top[1], last_size[0], last_size[1])
    goal = sample_cell(u[max_rooms + 2], free_mask(grid, agent) & last)
    return new_state(put(grid, goal, GOAL_CELL), agent, agent_dir)


def make(env_id: str, min_rooms: int = 6, max_rooms: int = 6, max_room_size: int = 10,
         max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-MultiRoom-*``: a 25x25 map, ``max_steps = 20 * max_rooms``."""
    if not 0 < min_rooms <= max_rooms:
        raise ValueError(f"min_rooms, max_rooms: need 0 < min_rooms <= max_rooms, got {min_rooms}, "
                         f"{max_rooms}")
    if max_room_size < MIN_ROOM:
        raise ValueError(f"max_room_size: must be >= {MIN_ROOM}, got {max_room_size}")
    return GridEnv(env_id=env_id, width=SIZE, height=SIZE,
                   layout=partial(layout, min_rooms=min_rooms, max_rooms=max_rooms,
                                  max_room=max_room_size),
                   max_episode_steps=max_steps or 20 * max_rooms, **kwargs)


IDS = {
    "MiniGrid-MultiRoom-N2-S4-v0": dict(min_rooms=2, max_rooms=2, max_room_size=4),
    # minigrid keeps this legacy id configured for six rooms
    "MiniGrid-MultiRoom-N4-S5-v0": dict(min_rooms=6, max_rooms=6, max_room_size=5),
    "MiniGrid-MultiRoom-N4-S5-v1": dict(min_rooms=4, max_rooms=4, max_room_size=5),
    "MiniGrid-MultiRoom-N6-v0": dict(min_rooms=6, max_rooms=6),
}
