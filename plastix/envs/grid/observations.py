"""MiniGrid's egocentric view with occlusion, and the full-grid encoding, computed in JAX.

`egocentric` reproduces ``MiniGridEnv.gen_obs()["image"]``: the ``V x V`` cells ahead of the agent,
rotated so the agent sits at ``(V // 2, V - 1)`` facing up, cells outside the grid read as walls,
cells hidden behind walls / closed doors read as ``unseen`` (0, 0, 0), and the agent's own cell shows
what it carries. Occlusion follows ``Grid.process_vis`` exactly (rows from the agent outwards, a
left-to-right then a right-to-left sweep per row), unrolled over the static view size.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import (
    AGENT,
    COLORS,
    DIR_TO_VEC,
    OBJECTS,
    RED,
    STATES,
    WALL_CELL,
    see_behind,
)
from plastix.envs.grid.state import GridState


def view_cells(state: GridState, view_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """World (x, y) of each view cell ``[vx, vy]`` and whether it lies inside the grid."""
    d = DIR_TO_VEC[state.agent_dir]
    r = jnp.stack([-d[1], d[0]])
    vx = jnp.arange(view_size)[:, None]
    vy = jnp.arange(view_size)[None, :]
    fwd = view_size - 1 - vy
    side = vx - view_size // 2
    x = state.agent_pos[0] + d[0] * fwd + r[0] * side
    y = state.agent_pos[1] + d[1] * fwd + r[1] * side
    inside = (x >= 0) & (x < state.width) & (y >= 0) & (y < state.height)
    return x, y, inside


def _sweep_row(seed: list, clear: list) -> tuple[list, list]:
    """One row of ``Grid.process_vis``: (the row's visible cells, the cells it opens in the row above).

    A left-to-right then a right-to-left sweep, exactly MiniGrid's; written with ``|`` and ``&`` only
    so it runs on numpy vectors (to tabulate it) as well as on traced scalars.
    """
    size = len(seed)
    mask, up = list(seed), [clear[0] & False] * size
    for i in range(size - 1):
        prop = mask[i] & clear[i]
        mask[i + 1] = mask[i + 1] | prop
        up[i + 1] = up[i + 1] | prop
        up[i] = up[i] | prop
    for i in reversed(range(1, size)):
        prop = mask[i] & clear[i]
        mask[i - 1] = mask[i - 1] | prop
        up[i - 1] = up[i - 1] | prop
        up[i] = up[i] | prop
    return mask, up


TABLE_MAX_VIEW = 9  # a table has 4**view_size entries: 16K at 7, 262K at 9


@functools.cache
def _row_table(size: int) -> np.ndarray:
    """`_sweep_row` for every (seed bits, clear bits) pair: entry = visible bits | up bits << size."""
    n = 1 << size
    seeds, clears = np.divmod(np.arange(n * n, dtype=np.int64), n)
    bits = lambda v: [((v >> i) & 1).astype(bool) for i in range(size)]
    mask, up = _sweep_row(bits(seeds), bits(clears))
    out = sum(m.astype(np.int64) << i for i, m in enumerate(mask))
    out = out | sum(u.astype(np.int64) << (size + i) for i, u in enumerate(up))
    return out.astype(np.int32)


def visibility(cells: jax.Array) -> jax.Array:
    """``Grid.process_vis`` on a rotated view ``cells[vx, vy]`` (agent at bottom centre).

    Rows are processed from the agent's row outwards; each row's sweep is one lookup in a table of
    `_sweep_row` indexed by (cells seen from the row below, clear cells of the row), as bitmasks.
    """
    size = cells.shape[0]
    clear = see_behind(cells)  # [vx, vy]
    if size > TABLE_MAX_VIEW:
        seed = [jnp.asarray(i == size // 2) for i in range(size)]
        rows = []
        for j in reversed(range(size)):
            row, seed = _sweep_row(seed, [clear[i, j] for i in range(size)])
            rows.append(jnp.stack(row))
        return jnp.stack(rows[::-1], axis=1)
    table = jnp.asarray(_row_table(size))
    powers = jnp.left_shift(1, jnp.arange(size, dtype=jnp.int32))
    clear_bits = (clear.astype(jnp.int32) * powers[:, None]).sum(0)  # [vy]
    seed = jnp.int32(1 << (size // 2))
    rows = []
    for j in reversed(range(size)):
        entry = table[(seed << size) | clear_bits[j]]
        rows.append(entry & ((1 << size) - 1))
        seed = entry >> size
    row_bits = jnp.stack(rows[::-1])  # [vy]
    return (row_bits[None, :] & powers[:, None]) != 0  # [vx, vy]


def egocentric_cells(state: GridState, view_size: int) -> jax.Array:
    """The ``V x V`` cells ahead of the agent, rotated (agent at the bottom centre), outside = wall."""
    x, y, inside = view_cells(state, view_size)
    cells = state.grid[jnp.clip(x, 0, state.width - 1), jnp.clip(y, 0, state.height - 1)]
    return jnp.where(inside[..., None], cells, jnp.asarray(WALL_CELL))


def egocentric(state: GridState, view_size: int = 7, see_through_walls: bool = False) -> jax.Array:
    """The (object, colour, state) ``uint8[V, V, 3]`` view MiniGrid gives the agent."""
    cells = egocentric_cells(state, view_size)
    center = (view_size // 2, view_size - 1)
    if see_through_walls:
        mask = jnp.ones((view_size, view_size), bool)
    else:
        mask = visibility(cells)
    cells = cells.at[center].set(state.carrying)
    return jnp.where(mask[..., None], cells[..., :3], jnp.uint8(0))


def one_hot(image: jax.Array) -> jax.Array:
    """An encoded image ``[..., 3]`` as ``uint8[..., 11 + 6 + 3]`` one-hot (object | colour | state)."""
    sizes = (len(OBJECTS), len(COLORS), len(STATES))
    return jnp.concatenate(
        [jax.nn.one_hot(image[..., i], n, dtype=jnp.uint8) for i, n in enumerate(sizes)], axis=-1
    )


def full_grid(state: GridState) -> jax.Array:
    """MiniGrid's ``FullyObsWrapper`` image: the whole grid with the agent as (agent, red, dir)."""
    agent = jnp.stack([jnp.uint8(AGENT), jnp.uint8(RED), state.agent_dir.astype(jnp.uint8)])
    return state.grid[..., :3].at[state.agent_pos[0], state.agent_pos[1]].set(agent)
