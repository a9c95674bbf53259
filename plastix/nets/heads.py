"""Output heads: categorical policy logits and a scalar value."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


class CategoricalHead(nn.Module):
    """Logits of a categorical policy; small orthogonal init (0.01) keeps the first policy near uniform."""

    num_actions: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return nn.Dense(self.num_actions, kernel_init=nn.initializers.orthogonal(0.01),
                        bias_init=nn.initializers.zeros)(x)


class ValueHead(nn.Module):
    """A scalar state value."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        v = nn.Dense(1, kernel_init=nn.initializers.orthogonal(1.0), bias_init=nn.initializers.zeros)(x)
        return jnp.squeeze(v, -1)
