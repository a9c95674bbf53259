"""Torsos: dense stacks (MLP, residual MLP) and pixel encoders (Nature CNN, Impala CNN).

Every hidden unit is a neuron layer in the sense of `plastix.nets.neurons`. Encoders return feature maps
``[..., h, w, c]``; turning them into vectors or tokens is the bottleneck's job (`nets/bottleneck.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from plastix.nets.neurons import expose
from plastix.nets.per_seed import Conv, Dense
from plastix.nets.pooling import max_pool

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "gelu": nn.gelu,
    "leaky_relu": nn.leaky_relu,
    "silu": nn.silu,
    "elu": nn.elu,
}
PADDINGS = ("SAME", "VALID")


def activation_fn(name: str):
    """The activation called ``name``; one of `ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: {name!r} is not one of {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class MLP(nn.Module):
    """``Dense -> [LayerNorm] -> activation`` for each width in ``hidden``; orthogonal(sqrt 2) kernels
    whatever the activation, as CleanRL / PureJaxRL."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    layer_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        for i, width in enumerate(self.hidden):
            x = Dense(width, kernel_init=nn.initializers.orthogonal(np.sqrt(2)), name=f"dense_{i}")(x)
            if self.layer_norm:
                x = nn.LayerNorm(name=f"norm_{i}")(x)
            x = expose(self, f"dense_{i}", x, act)
        return x


class ResidualBlock(nn.Module):
    """Pre-LayerNorm residual block (SimBa / BRO): ``x + Dense(act(Dense(LN(x))))``.

    Its neurons are the inner units ``dense_0``: their incoming weights are ``dense_0``'s kernel column
    and their outgoing weights ``dense_1``'s kernel row. The residual stream itself is not a neuron
    layer: each of its coordinates is written by every block, so it has no single incoming layer.
    """

    width: int
    expansion: int = 4
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = nn.LayerNorm(name="norm")(x)
        y = Dense(self.width * self.expansion, kernel_init=nn.initializers.he_normal(), name="dense_0")(y)
        y = expose(self, "dense_0", y, activation_fn(self.activation))
        return x + Dense(self.width, kernel_init=nn.initializers.he_normal(), name="dense_1")(y)


class ResidualMLP(nn.Module):
    """Linear embedding to ``width``, ``blocks`` pre-LN residual blocks, a final LayerNorm."""

    width: int = 256
    blocks: int = 2
    expansion: int = 4
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Dense(self.width, kernel_init=nn.initializers.orthogonal(1.0), name="embed")(x)
        for i in range(self.blocks):
            x = ResidualBlock(self.width, self.expansion, self.activation, name=f"block_{i}")(x)
        return nn.LayerNorm(name="norm")(x)


def _scaled_pixels(x: jax.Array) -> jax.Array:
    """uint8 frames to [0, 1]; float inputs are taken as already scaled."""
    return x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)


class NatureCNN(nn.Module):
    """DQN's encoder: Conv 32 8x8/4, 64 4x4/2, 64 3x3/1, ReLU. VALID padding gives 7x7x64 on 84x84 (the
    original DQN); SAME (Dopamine-JAX's default) gives 11x11x64. 77,984 parameters either way."""

    padding: str = "SAME"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.padding not in PADDINGS:
            raise ValueError(f"padding: {self.padding!r} is not one of {', '.join(PADDINGS)}")
        x = _scaled_pixels(x)
        act = activation_fn(self.activation)
        for i, (features, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
            x = Conv(features, (kernel, kernel), (stride, stride), padding=self.padding,
                     kernel_init=nn.initializers.xavier_uniform(), name=f"conv_{i}")(x)
            x = expose(self, f"conv_{i}", x, act)
        return x


class MinAtarCNN(nn.Module):
    """MinAtar's encoder (Young & Tian 2019; Dopamine's MinAtar DQN): one Conv 16 x ``scale`` 3x3 stride 1,
    ReLU. VALID padding gives Young & Tian's 8x8 on the 10x10 grid, SAME Dopamine-JAX's 10x10."""

    scale: int = 1
    padding: str = "SAME"
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Conv(16 * self.scale, (3, 3), (1, 1), padding=self.padding,
                 kernel_init=nn.initializers.xavier_uniform(), name="conv_0")(x.astype(jnp.float32))
        return expose(self, "conv_0", x, activation_fn(self.activation))


class ImpalaResidual(nn.Module):
    """``x + Conv(ReLU(Conv(ReLU(x))))``; the neurons are the inner conv's channels (``conv_0``)."""

    channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = Conv(self.channels, (3, 3), padding="SAME", name="conv_0")(nn.relu(x))
        y = expose(self, "conv_0", y, nn.relu)
        return x + Conv(self.channels, (3, 3), padding="SAME", name="conv_1")(y)


class ImpalaStack(nn.Module):
    """Conv 3x3, MaxPool 3x3 stride 2 (SAME), two residual blocks."""

    channels: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = Conv(self.channels, (3, 3), padding="SAME", name="conv")(x)
        x = max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i in range(2):
            x = ImpalaResidual(self.channels, name=f"res_{i}")(x)
        return x


class ImpalaCNN(nn.Module):
    """Impala's encoder with channels (16, 32, 32) x ``scale`` and a final ReLU: 84x84 -> 11x11x(32 x
    scale); 97,744 parameters at x1 and 1,552,192 at x4."""

    scale: int = 1
    channels: Sequence[int] = (16, 32, 32)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = _scaled_pixels(x)
        for i, c in enumerate(self.channels):
            x = ImpalaStack(c * self.scale, name=f"stack_{i}")(x)
        return nn.relu(x)
