"""Building blocks of layout generators: walls, uniform placement in free cells."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import BALL, BOX, CELL_CHANNELS, EMPTY, EMPTY_CELL, KEY, TYPE, WALL_CELL


def walled_grid(width: int, height: int) -> np.ndarray:
    """An empty ``uint8[W, H, 5]`` grid inside a border of walls (``Grid.wall_rect(0, 0, W, H)``)."""
    grid = np.broadcast_to(EMPTY_CELL, (width, height, CELL_CHANNELS)).copy()
    grid[0, :] = grid[-1, :] = grid[:, 0] = grid[:, -1] = WALL_CELL
    return grid


def region_mask(width: int, height: int, x0, y0, w, h) -> jax.Array:
    """Cells with ``x0 <= x < x0 + w`` and ``y0 <= y < y0 + h`` (bounds may be traced)."""
    x = jnp.arange(width)[:, None]
    y = jnp.arange(height)[None, :]
    return (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)


def free_mask(grid: jax.Array, agent_pos: jax.Array | None = None) -> jax.Array:
    """Empty cells not under the agent: where ``MiniGridEnv.place_obj`` may put something."""
    free = grid[..., TYPE] == EMPTY
    if agent_pos is not None:
        free = free & ~at(grid, agent_pos)[..., 0]
    return free


def uniforms(key: jax.Array, n: int) -> jax.Array:
    """``n`` uniforms in [0, 1) from one PRNG call: layouts draw everything they need at once."""
    return jax.random.uniform(key, (n,))


def randint(u: jax.Array, low, high) -> jax.Array:
    """An integer uniform in ``[low, high)`` from one uniform ``u`` (``MiniGridEnv._rand_int``)."""
    return (low + jnp.floor(u * (high - low))).astype(jnp.int32)


def sample_cell(u: jax.Array, mask: jax.Array) -> jax.Array:
    """A uniformly random ``(x, y)`` among the True cells of ``mask`` (rejection sampling's law).

    The uniform ``u`` picks the k-th free cell in x-major order: one draw instead of one per cell. The
    column of that cell, then its row within the column, are found from two short prefix sums (W + H
    long): XLA's CPU prefix sum costs the square of its length, so one over all W * H cells was most of
    a reset on the larger grids.
    """
    m = mask.astype(jnp.int32)
    per_x = m.sum(1)
    up_to_x = jnp.cumsum(per_x)
    k = jnp.floor(u * up_to_x[-1]).astype(jnp.int32)
    x = jnp.argmax(up_to_x > k)
    y = jnp.argmax(jnp.cumsum(m[x]) > k - (up_to_x[x] - per_x[x]))  # k minus the cells of earlier columns
    return jnp.stack([x, y]).astype(jnp.int32)


def at(grid: jax.Array, pos) -> jax.Array:
    """Boolean ``[W, H, 1]`` mask of one cell; selects with it fuse, where scatters would not."""
    x = jnp.arange(grid.shape[0])[:, None, None]
    y = jnp.arange(grid.shape[1])[None, :, None]
    return (x == pos[0]) & (y == pos[1])


PICKUP_TYPES = jnp.array([KEY, BALL, BOX])


def distinct_objects(key: jax.Array, num: int) -> tuple[jax.Array, jax.Array]:
    """(types, colours) of ``num`` distinct key/ball/box objects in MiniGrid's draw order: the law of
    its retry-until-new loop over (type, colour) pairs is a random permutation's first ``num``."""
    pairs = jax.random.permutation(key, 3 * 6)[:num]
    return PICKUP_TYPES[pairs // 6], pairs % 6


def object_cell(obj, color, state=0) -> jax.Array:
    """An encoded ``uint8[5]`` cell whose object, colour or state may be traced."""
    zero = jnp.zeros((), jnp.int32)
    return jnp.stack([jnp.asarray(v, jnp.int32) for v in (obj, color, state, zero, zero)]).astype(
        jnp.uint8)


def put(grid: jax.Array, pos, cell) -> jax.Array:
    """``grid`` with ``cell`` written at ``pos``."""
    return jnp.where(at(grid, pos), jnp.asarray(cell, grid.dtype), grid)


def place_objects(u: jax.Array, grid: jax.Array, types, colors, apart: bool = False):
    """Objects put one after another, each on a uniformly random free cell (``place_obj``'s law), one
    uniform of ``u`` each; ``apart`` also rejects the 3x3 around earlier objects (PutNear's
    ``near_obj``). Returns the grid and the ``[n, 2]`` positions."""
    w, h = grid.shape[:2]
    allowed = jnp.ones((w, h), bool)
    positions = []
    for i in range(len(types)):
        pos = sample_cell(u[i], free_mask(grid) & allowed)
        grid = put(grid, pos, object_cell(types[i], colors[i]))
        if apart:
            allowed &= ~region_mask(w, h, pos[0] - 1, pos[1] - 1, 3, 3)
        positions.append(pos)
    return grid, jnp.stack(positions)
