"""Max pooling with a gradient XLA:CPU runs fast.

``flax.linen.max_pool`` differentiates through ``select_and_scatter``, which XLA:CPU runs as a slow
scalar loop: with it, the Impala encoders' forward and backward passes took 2-2.6x as long
(`bench/nets_cost.py`, README). `max_pool` takes the maximum over the window's strided slices and, in
its backward pass, gives each output's gradient to the first maximal element of its window in
row-major order, as ``select_and_scatter`` does, so values and gradients are ``nn.max_pool``'s, ties
included (summed in another order where windows overlap: float rounding).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax


def _geometry(shape: tuple[int, ...], window: tuple[int, int], strides: tuple[int, int], padding: str):
    """Padding ``((lo, hi), (lo, hi))`` of the two spatial axes and the output's spatial size."""
    if padding not in ("SAME", "VALID"):
        raise ValueError(f"padding: {padding!r} is not one of SAME, VALID")
    pads = tuple(lax.padtype_to_pads(shape[-3:-1], window, strides, padding))
    out = tuple((shape[a] + sum(pads[i]) - window[i]) // strides[i] + 1 for i, a in enumerate((-3, -2)))
    return pads, out


def _windows(xp: jax.Array, window: tuple[int, int], strides: tuple[int, int], out: tuple[int, int]):
    """The strided slice of the padded input ``xp`` under each window offset, in row-major order."""
    lead = xp.ndim - 3
    for i in range(window[0]):
        for j in range(window[1]):
            start = (0,) * lead + (i, j, 0)
            limit = xp.shape[:lead] + (i + strides[0] * (out[0] - 1) + 1, j + strides[1] * (out[1] - 1) + 1,
                                       xp.shape[-1])
            yield (i, j), lax.slice(xp, start, limit, (1,) * lead + tuple(strides) + (1,))


@functools.cache
def _pool(window: tuple[int, int], strides: tuple[int, int], padding: str):
    def pad(x: jax.Array) -> tuple[jax.Array, tuple]:
        pads, out = _geometry(x.shape, window, strides, padding)
        spec = [(0, 0)] * (x.ndim - 3) + [pads[0], pads[1], (0, 0)]
        return jnp.pad(x, spec, constant_values=-jnp.inf), (pads, out)

    @jax.custom_vjp
    def pool(x: jax.Array) -> jax.Array:
        xp, (_, out) = pad(x)
        return functools.reduce(jnp.maximum, (s for _, s in _windows(xp, window, strides, out)))

    def fwd(x: jax.Array):
        y = pool(x)
        return y, (x, y)

    def bwd(saved: tuple[jax.Array, jax.Array], g: jax.Array):
        x, y = saved
        xp, (pads, out) = pad(x)
        lead = x.ndim - 3
        taken = jnp.zeros(y.shape, bool)
        dxp = jnp.zeros(xp.shape, g.dtype)
        for (i, j), s in _windows(xp, window, strides, out):
            first = (s == y) & ~taken  # the window's first maximum takes the gradient
            taken = taken | first
            spread = [(0, 0, 0)] * lead + [
                (i, xp.shape[-3] - i - strides[0] * (out[0] - 1) - 1, strides[0] - 1),
                (j, xp.shape[-2] - j - strides[1] * (out[1] - 1) - 1, strides[1] - 1), (0, 0, 0)]
            dxp = dxp + lax.pad(jnp.where(first, g, 0), jnp.zeros((), g.dtype), spread)
        crop = tuple(slice(None) for _ in range(lead)) + (
            slice(pads[0][0], xp.shape[-3] - pads[0][1]), slice(pads[1][0], xp.shape[-2] - pads[1][1]))
        return (dxp[crop],)

    pool.defvjp(fwd, bwd)
    return pool


def max_pool(x: jax.Array, window: Sequence[int], strides: Sequence[int],
             padding: str = "VALID") -> jax.Array:
    """``flax.linen.max_pool(x, window, strides, padding)`` on ``[..., h, w, c]`` (values and gradients)."""
    return _pool(tuple(window), tuple(strides), padding)(x)
