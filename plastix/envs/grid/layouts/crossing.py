"""MiniGrid ``CrossingEnv``: rivers of lava (LavaCrossing) or walls (SimpleCrossing) with one safe path.

Rivers are every other row/column; ``num_crossings`` of them are drawn, then an opening is cut in each
along a random monotone path from the top-left room to the goal, exactly as MiniGrid's ``_gen_grid``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import EMPTY_CELL, GOAL_CELL, LAVA_CELL, WALL_CELL
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.layouts.common import put, randint, uniforms, walled_grid
from plastix.envs.grid.state import GridState, new_state


def _limit(sorted_pos: jax.Array, count: jax.Array, k: jax.Array, end: int) -> jax.Array:
    """``([0] + rivers + [end])[k]`` for a padded sorted river array holding ``count`` rivers."""
    inner = sorted_pos[jnp.clip(k - 1, 0, sorted_pos.shape[0] - 1)]
    return jnp.where(k == 0, 0, jnp.where(k - 1 < count, inner, end))


def layout(key: jax.Array, size: int, num_crossings: int, obstacle: np.ndarray) -> GridState:
    k_rivers, k_path, k_open = jax.random.split(key, 3)
    candidates = np.arange(2, size - 2, 2)
    n = len(candidates)
    chosen = jax.random.permutation(k_rivers, 2 * n)[:num_crossings]  # [0, n): vertical, [n, 2n): horizontal
    is_v = jnp.zeros(2 * n, bool).at[chosen].set(True)
    v_sel, h_sel = is_v[:n], is_v[n:]
    pos = jnp.asarray(candidates)
    x = jnp.arange(size)[:, None, None]
    y = jnp.arange(size)[None, :, None]
    inside = (x >= 1) & (x <= size - 2) & (y >= 1) & (y <= size - 2)
    v_cols = jnp.any((x[..., None] == pos) & v_sel, -1)
    h_rows = jnp.any((y[..., None] == pos) & h_sel, -1)
    grid = jnp.asarray(walled_grid(size, size))
    grid = put(grid, (size - 2, size - 2), GOAL_CELL)
    grid = jnp.where(inside & (v_cols | h_rows), jnp.asarray(obstacle), grid)

    count_v, count_h = v_sel.sum(), h_sel.sum()
    big = size * 10
    rivers_v = jnp.sort(jnp.where(v_sel, pos, big))
    rivers_h = jnp.sort(jnp.where(h_sel, pos, big))
    # the path: count_v moves across vertical rivers ("h" in MiniGrid) and count_h across horizontal
    crosses_v = jax.random.permutation(k_path, jnp.arange(num_crossings) < count_v)
    u = uniforms(k_open, num_crossings)

    def cut(carry, xs):
        grid, room_i, room_j = carry
        across_v, ui = xs
        # crossing a vertical river: x is the river, y random inside the current row band
        x_v = _limit(rivers_v, count_v, room_i + 1, size - 1)
        y_v = randint(ui, _limit(rivers_h, count_h, room_j, size - 1) + 1,
                      _limit(rivers_h, count_h, room_j + 1, size - 1))
        # crossing a horizontal river: y is the river, x random inside the current column band
        x_h = randint(ui, _limit(rivers_v, count_v, room_i, size - 1) + 1,
                      _limit(rivers_v, count_v, room_i + 1, size - 1))
        y_h = _limit(rivers_h, count_h, room_j + 1, size - 1)
        opening = jnp.where(across_v, jnp.stack([x_v, y_v]), jnp.stack([x_h, y_h]))
        grid = put(grid, opening, EMPTY_CELL)
        return (grid, room_i + across_v, room_j + ~across_v), None

    (grid, _, _), _ = jax.lax.scan(cut, (grid, 0, 0), (crosses_v, u))
    return new_state(grid, jnp.array([1, 1]), 0)


def make(env_id: str, size: int = 9, num_crossings: int = 1, obstacle_type: str = "lava",
         max_steps: int | None = None, **kwargs) -> GridEnv:
    """``MiniGrid-{Lava,Simple}Crossing*``: ``max_steps = 4 * size**2``; odd sizes only."""
    if size % 2 == 0 or size < 5:
        raise ValueError(f"size: crossings need an odd size >= 5, got {size}")
    obstacles = {"lava": LAVA_CELL, "wall": WALL_CELL}
    if obstacle_type not in obstacles:
        raise ValueError(f"obstacle_type: {obstacle_type!r} is not one of lava, wall")
    max_rivers = 2 * len(range(2, size - 2, 2))
    if not 0 < num_crossings <= max_rivers:
        raise ValueError(f"num_crossings: must lie in [1, {max_rivers}] for size {size}")
    return GridEnv(
        env_id=env_id, width=size, height=size,
        layout=partial(layout, size=size, num_crossings=num_crossings,
                       obstacle=obstacles[obstacle_type]),
        max_episode_steps=max_steps or 4 * size**2, **kwargs,
    )


IDS = {
    **{f"MiniGrid-LavaCrossingS{s}N{n}-v0": dict(size=s, num_crossings=n)
       for s, n in ((9, 1), (9, 2), (9, 3), (11, 5))},
    **{f"MiniGrid-SimpleCrossingS{s}N{n}-v0": dict(size=s, num_crossings=n, obstacle_type="wall")
       for s, n in ((9, 1), (9, 2), (9, 3), (11, 5))},
}
