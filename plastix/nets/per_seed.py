"""Convolutions and dense products that stay fast when vmapped over seeds' weights on a CPU.

The training loops vmap every agent over seeds, so each layer's kernel carries a seed axis. On XLA:CPU,
``vmap`` of ``lax.conv_general_dilated`` over kernels becomes one grouped convolution, slower than the
same convolutions seed by seed at any number of seeds; ``vmap`` of ``lax.dot_general`` over kernels is
a batched product, faster than separate products over several seeds but slower over one seed (whose
kernel gradients XLA lays out transposed). `Conv` and `Dense` are Flax's with a convolution / product
whose batching rule on CPU applies the operation seed by seed where that is faster (convolutions
always, products over one seed: `seed_dot` is also NoisyNet's product) and the primitive's own
batching elsewhere; the gradients' operations (input and kernel) do the same. The README's benchmark
sections give the measurements (`bench/atari_throughput.py`, `bench/conv_agents.py`). Values are those
of the ``lax`` functions.

On other backends these are the ``lax`` functions themselves. On CPU they are ``custom_vjp``
functions: reverse-mode gradients only (no ``jax.jvp``, no gradients of gradients). The backend is
``jax.default_backend()`` when the network is traced.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap


def _per_seed(f: Callable[..., jax.Array], always: bool) -> Callable[..., jax.Array]:
    """``f(input, kernel, ...)`` whose ``vmap`` over a batched ``kernel`` calls ``f`` once per batch entry
    (``always``, or only over a batch of one); otherwise ``vmap(f)``, itself split this way by any vmap
    around it."""
    g = custom_vmap(f)

    @g.def_vmap
    def rule(size: int, batched: list[bool], *args: jax.Array) -> tuple[jax.Array, bool]:
        if batched[1] and (always or size == 1):
            return jnp.stack([g(*[a[i] if b else a for a, b in zip(args, batched, strict=True)])
                              for i in range(size)]), True
        return _vmapped(f, always, tuple(0 if b else None for b in batched))(*args), True

    return g


@functools.cache
def _vmapped(f: Callable[..., jax.Array], always: bool, in_axes: tuple) -> Callable[..., jax.Array]:
    return _per_seed(jax.vmap(f, in_axes=in_axes), always)


@functools.cache
def _bilinear(fn: Callable[..., jax.Array], always: bool, settings: tuple[tuple[str, Any], ...]):
    """``fn(x, w, **settings)`` with its forward and both gradients `_per_seed`."""
    op = functools.partial(fn, **dict(settings))
    forward = _per_seed(lambda x, w: op(x, w), always)
    d_input = _per_seed(lambda x, w, g: jax.vjp(lambda x_: op(x_, w), x)[1](g)[0], always)
    d_kernel = _per_seed(lambda x, w, g: jax.vjp(lambda w_: op(x, w_), w)[1](g)[0], always)

    @jax.custom_vjp
    def apply(x: jax.Array, w: jax.Array) -> jax.Array:
        return forward(x, w)

    def fwd(x: jax.Array, w: jax.Array):
        return forward(x, w), (x, w)

    def bwd(saved: tuple[jax.Array, jax.Array], g: jax.Array):
        x, w = saved
        return d_input(x, w, g), d_kernel(x, w, g)

    apply.defvjp(fwd, bwd)
    return apply


def _static(value: Any) -> Any:
    """``value`` hashable (lists and arrays, e.g. of padding pairs or strides, become tuples)."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple) and not isinstance(value, lax.ConvDimensionNumbers):
        return tuple(_static(v) for v in value)
    return value


def _settings(**kwargs: Any) -> tuple[tuple[str, Any], ...]:
    return tuple((k, _static(v)) for k, v in kwargs.items())


def seed_conv(lhs: jax.Array, rhs: jax.Array, window_strides: Any, padding: Any, lhs_dilation: Any = None,
              rhs_dilation: Any = None, dimension_numbers: Any = None, feature_group_count: int = 1,
              batch_group_count: int = 1, precision: Any = None,
              preferred_element_type: Any = None) -> jax.Array:
    """``lax.conv_general_dilated`` (same arguments and values), vmapped over kernels seed by seed on CPU."""
    settings = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                    rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
                    feature_group_count=feature_group_count, batch_group_count=batch_group_count,
                    precision=precision, preferred_element_type=preferred_element_type)
    if jax.default_backend() != "cpu":
        return lax.conv_general_dilated(lhs, rhs, **settings)
    return _bilinear(lax.conv_general_dilated, True, _settings(**settings))(lhs, rhs)


def seed_dot(lhs: jax.Array, rhs: jax.Array, dimension_numbers: Any, precision: Any = None,
             preferred_element_type: Any = None) -> jax.Array:
    """``lax.dot_general`` (same arguments and values); vmapped over one seed's kernel on CPU, the product
    of that seed."""
    settings = dict(dimension_numbers=dimension_numbers, precision=precision,
                    preferred_element_type=preferred_element_type)
    if jax.default_backend() != "cpu":
        return lax.dot_general(lhs, rhs, **settings)
    return _bilinear(lax.dot_general, False, _settings(**settings))(lhs, rhs)


Conv = functools.partial(nn.Conv, conv_general_dilated=seed_conv)
"""``flax.linen.Conv`` convolving with `seed_conv`."""
Dense = functools.partial(nn.Dense, dot_general=seed_dot)
"""``flax.linen.Dense`` multiplying with `seed_dot`."""
