"""RGB frames of MinAtar observations in the reference's colours (``minatar.Environment.display_state``):
a black background and, per channel, a colour of the cubehelix palette (seaborn's
``color_palette("cubehelix", n_channels)``: matplotlib's cubehelix map at ``n`` evenly spaced interior
points); a cell takes the colour of the highest channel set in it."""

from __future__ import annotations

import functools

import matplotlib
import numpy as np


@functools.cache
def palette(n_channels: int) -> np.ndarray:
    """``uint8[n_channels + 1, 3]``: black for an empty cell, then one colour per channel."""
    points = np.linspace(0, 1, n_channels + 2)[1:-1]
    colours = matplotlib.colormaps["cubehelix"](points)[:, :3]
    return np.round(np.concatenate([np.zeros((1, 3)), colours]) * 255).astype(np.uint8)


def cell_colours(obs: np.ndarray) -> np.ndarray:
    """``int[..., 10, 10]``: each cell's palette index (0: empty, else 1 + its highest set channel)."""
    obs = np.asarray(obs, bool)
    return np.max(obs * np.arange(1, obs.shape[-1] + 1), axis=-1)


def rgb(obs: np.ndarray, tile_size: int = 16) -> np.ndarray:
    """``uint8[..., 10 * tile_size, 10 * tile_size, 3]``: observations ``bool[..., 10, 10, C]`` as images."""
    image = palette(np.shape(obs)[-1])[cell_colours(obs)]
    return np.repeat(np.repeat(image, tile_size, axis=-3), tile_size, axis=-2)
