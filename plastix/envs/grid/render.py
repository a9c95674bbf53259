"""RGB images of gridworld states, batched in JAX: MiniGrid's tiles, drawn once, gathered per cell.

Tiles are painted on the host with MiniGrid's shapes (3x3 supersampling, the same rectangles, circles,
lines and the agent's triangle) into an atlas indexed by (object, colour, state, agent direction or
none, highlighted); rendering a state is then one gather and a reshape, so it ``vmap``s and ``jit``s.
`rgb_full` matches ``RGBImgObsWrapper`` (top-down, the agent's view highlighted) and `rgb_egocentric`
matches ``RGBImgPartialObsWrapper`` (the agent's rotated view).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import (
    BALL,
    BOX,
    COLORS,
    DOOR,
    EMPTY,
    FLOOR,
    GOAL,
    KEY,
    LAVA,
    LOCKED,
    OBJECTS,
    OPEN,
    STATES,
    WALL,
)
from plastix.envs.grid.observations import egocentric_cells, view_cells, visibility
from plastix.envs.grid.state import GridState

RGB = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [112, 39, 195], [255, 255, 0],
                [100, 100, 100]], np.float64)
SUBDIVS = 3


def _rect(x, y, xmin, xmax, ymin, ymax):
    return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)


def _circle(x, y, cx, cy, r):
    return (x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r


def _line(x, y, x0, y0, x1, y1, r):
    p0 = np.array([x0, y0], np.float32)
    d = np.array([x1, y1], np.float32) - p0
    dist = np.linalg.norm(d)
    d = d / dist
    box = (x >= min(x0, x1) - r) & (x <= max(x0, x1) + r) & (y >= min(y0, y1) - r) & (y <= max(y0, y1) + r)
    a = np.clip((x - p0[0]) * d[0] + (y - p0[1]) * d[1], 0, dist)
    return box & (np.hypot(x - (p0[0] + a * d[0]), y - (p0[1] + a * d[1])) <= r)


def _triangle(x, y, a, b, c):
    a, b, c = (np.array(p, np.float32) for p in (a, b, c))
    v0, v1 = c - a, b - a
    v2x, v2y = x - a[0], y - a[1]
    d00, d01, d11 = v0 @ v0, v0 @ v1, v1 @ v1
    d02, d12 = v0[0] * v2x + v0[1] * v2y, v1[0] * v2x + v1[1] * v2y
    inv = 1 / (d00 * d11 - d01 * d01)
    u = (d11 * d02 - d01 * d12) * inv
    v = (d00 * d12 - d01 * d02) * inv
    return (u >= 0) & (v >= 0) & ((u + v) < 1)


def _paint_object(img, x, y, obj: int, color: int, state: int) -> None:
    """MiniGrid's ``WorldObj.render`` for one encoded object."""
    c = RGB[color]
    if obj in (WALL, GOAL):
        img[_rect(x, y, 0, 1, 0, 1)] = c
    elif obj == FLOOR:
        img[_rect(x, y, 0.031, 1, 0.031, 1)] = c / 2
    elif obj == LAVA:
        img[_rect(x, y, 0, 1, 0, 1)] = (255, 128, 0)
        for i in range(3):
            lo, hi = 0.3 + 0.2 * i, 0.4 + 0.2 * i
            for x0, y0, x1, y1 in ((0.1, lo, 0.3, hi), (0.3, hi, 0.5, lo), (0.5, lo, 0.7, hi),
                                   (0.7, hi, 0.9, lo)):
                img[_line(x, y, x0, y0, x1, y1, 0.03)] = 0
    elif obj == DOOR:
        if state == OPEN:
            img[_rect(x, y, 0.88, 1.00, 0.00, 1.00)] = c
            img[_rect(x, y, 0.92, 0.96, 0.04, 0.96)] = 0
        elif state == LOCKED:
            img[_rect(x, y, 0.00, 1.00, 0.00, 1.00)] = c
            img[_rect(x, y, 0.06, 0.94, 0.06, 0.94)] = 0.45 * c
            img[_rect(x, y, 0.52, 0.75, 0.50, 0.56)] = c
        else:
            img[_rect(x, y, 0.00, 1.00, 0.00, 1.00)] = c
            img[_rect(x, y, 0.04, 0.96, 0.04, 0.96)] = 0
            img[_rect(x, y, 0.08, 0.92, 0.08, 0.92)] = c
            img[_rect(x, y, 0.12, 0.88, 0.12, 0.88)] = 0
            img[_circle(x, y, 0.75, 0.50, 0.08)] = c
    elif obj == KEY:
        img[_rect(x, y, 0.50, 0.63, 0.31, 0.88)] = c
        img[_rect(x, y, 0.38, 0.50, 0.59, 0.66)] = c
        img[_rect(x, y, 0.38, 0.50, 0.81, 0.88)] = c
        img[_circle(x, y, 0.56, 0.28, 0.190)] = c
        img[_circle(x, y, 0.56, 0.28, 0.064)] = 0
    elif obj == BALL:
        img[_circle(x, y, 0.5, 0.5, 0.31)] = c
    elif obj == BOX:
        img[_rect(x, y, 0.12, 0.88, 0.12, 0.88)] = c
        img[_rect(x, y, 0.18, 0.82, 0.18, 0.82)] = 0
        img[_rect(x, y, 0.16, 0.84, 0.47, 0.53)] = c


def _tile(tile_size: int, obj: int, color: int, state: int, agent_dir: int | None,
          highlight: bool) -> np.ndarray:
    """``Grid.render_tile``: grid lines, the object, the agent's triangle, highlight, downsample."""
    n = tile_size * SUBDIVS
    y, x = (np.mgrid[0:n, 0:n] + 0.5) / n
    img = np.zeros((n, n, 3), np.uint8)
    img[_rect(x, y, 0, 0.031, 0, 1)] = 100
    img[_rect(x, y, 0, 1, 0, 0.031)] = 100
    if obj not in (EMPTY, 0):
        _paint_object(img, x, y, obj, color, state)
    if agent_dir is not None:
        theta = -0.5 * math.pi * agent_dir
        xr = 0.5 + (x - 0.5) * math.cos(theta) - (y - 0.5) * math.sin(theta)
        yr = 0.5 + (y - 0.5) * math.cos(theta) + (x - 0.5) * math.sin(theta)
        img[_triangle(xr, yr, (0.12, 0.19), (0.87, 0.50), (0.12, 0.81))] = (255, 0, 0)
    if highlight:
        img = (img + 0.30 * (np.uint8(255) - img)).clip(0, 255).astype(np.uint8)
    small = img.reshape(tile_size, SUBDIVS, tile_size, SUBDIVS, 3).mean(axis=3).mean(axis=1)
    return small.astype(np.uint8)


@functools.lru_cache(maxsize=8)
def tile_atlas(tile_size: int) -> np.ndarray:
    """``uint8[objects, colours, states, 5 (no agent, dir 0..3), 2 (highlight), T, T, 3]``."""
    atlas = np.zeros((len(OBJECTS), len(COLORS), len(STATES), 5, 2, tile_size, tile_size, 3), np.uint8)
    for o in range(len(OBJECTS)):
        for c in range(len(COLORS)):
            for s in range(len(STATES)):
                for a in range(5):
                    for h in range(2):
                        atlas[o, c, s, a, h] = _tile(tile_size, o, c, s, None if a == 0 else a - 1, bool(h))
    return atlas


def _compose(cells: jax.Array, agent: jax.Array, highlight: jax.Array, tile_size: int) -> jax.Array:
    """Gather each cell's tile and lay tiles out as an image ``[rows * T, cols * T, 3]``."""
    atlas = jnp.asarray(tile_atlas(tile_size))
    tiles = atlas[cells[..., 0], cells[..., 1], cells[..., 2], agent, highlight.astype(jnp.int32)]
    w, h = cells.shape[:2]
    return tiles.transpose(1, 2, 0, 3, 4).reshape(h * tile_size, w * tile_size, 3)


def rgb_full(state: GridState, tile_size: int = 8, view_size: int = 7,
             see_through_walls: bool = False) -> jax.Array:
    """The whole grid, the agent drawn as its triangle and its view highlighted (``RGBImgObsWrapper``)."""
    x, y, inside = view_cells(state, view_size)
    seen = egocentric_cells(state, view_size)
    mask = jnp.ones_like(inside) if see_through_walls else visibility(seen)
    highlight = jnp.zeros((state.width, state.height), bool)
    highlight = highlight.at[jnp.where(inside, x, state.width), jnp.where(inside, y, state.height)].set(
        mask, mode="drop")
    xs = jnp.arange(state.width)[:, None]
    ys = jnp.arange(state.height)[None, :]
    here = (xs == state.agent_pos[0]) & (ys == state.agent_pos[1])
    agent = jnp.where(here, state.agent_dir + 1, 0)
    return _compose(state.grid[..., :3], agent, highlight, tile_size)


def rgb_egocentric(state: GridState, tile_size: int = 8, view_size: int = 7,
                   see_through_walls: bool = False) -> jax.Array:
    """The agent's rotated view, hidden cells blank, agent facing up (``RGBImgPartialObsWrapper``)."""
    cells = egocentric_cells(state, view_size)
    mask = jnp.ones(cells.shape[:2], bool) if see_through_walls else visibility(cells)
    center = (view_size // 2, view_size - 1)
    cells = cells.at[center].set(state.carrying)[..., :3]
    cells = jnp.where(mask[..., None], cells, jnp.array([EMPTY, 0, 0], jnp.uint8))
    agent = jnp.zeros(cells.shape[:2], jnp.int32).at[center].set(4)  # direction 3: up
    return _compose(cells, agent, mask, tile_size)
