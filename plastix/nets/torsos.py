"""Feature extractors ("torsos") that map flat inputs to features.

Every hidden layer's post-activation output is a *neuron layer*: it is sown into the
``"activations"`` collection under ``"<dense name>_out"``, so plasticity diagnostics can read it without
knowing the architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "leaky_relu": nn.leaky_relu,
    "silu": nn.silu,
    "elu": nn.elu,
}


def activation_fn(name: str):
    """The activation called ``name``; one of `ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: {name!r} is not one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """Dense -> activation, per entry of ``hidden``; orthogonal(sqrt 2) init as in CleanRL/PureJaxRL."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for i, width in enumerate(self.hidden):
            x = nn.Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)),
                         bias_init=nn.initializers.zeros, name=f"dense_{i}")(x)
            x = act(x)
            self.sow("activations", f"dense_{i}_out", x)
        return x
