"""What sits between an encoder's feature map ``[..., h, w, d]`` and the dense layers.

- ``flatten``: the ``h * w * d`` vector (DQN's default);
- ``gap``: global average pooling over positions, ``d`` features ("Mind the GAP");
- tokenizers ("Don't flatten, tokenize"), each giving tokens ``[..., m, k]``: ``perconv`` (``h * w``
  tokens of dim ``d``), ``perfeat`` (``d`` tokens of dim ``h * w``), ``persamp`` (one token of
  ``h * w * d``), ``perpatch`` (a learned Conv with kernel = stride = ``patch``, VALID), ``perpatch_avg``
  (average-pooled patches instead of a learned conv), ``shuffled`` (``perconv`` after a fixed random
  permutation of the features).

Tokens either feed a mixture of experts or are aggregated into a vector by flatten, sum or mean (the
paper's "tokenized baseline").
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from plastix.nets.per_seed import Conv

BOTTLENECKS = ("flatten", "gap", "perconv", "perfeat", "persamp", "perpatch", "perpatch_avg", "shuffled")
TOKENIZERS = BOTTLENECKS[2:]
AGGREGATIONS = ("flatten", "sum", "mean")


def spatial(x: jax.Array) -> jax.Array:
    """View any input as a feature map: vectors ``[..., d]`` become ``[..., 1, 1, d]``."""
    return x if x.ndim >= 3 else x[..., None, None, :]


def _flat(x: jax.Array, axes: int) -> jax.Array:
    return x.reshape(x.shape[: x.ndim - axes] + (-1,))


class Tokenizer(nn.Module):
    """Feature map ``[..., h, w, d]`` -> tokens ``[..., m, k]`` by the rule named ``kind``."""

    kind: str = "perconv"
    patch: int = 3
    embed: int = 64
    seed: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kind not in TOKENIZERS:
            raise ValueError(f"bottleneck: {self.kind!r} is not a tokenizer; accepted: "
                             f"{', '.join(TOKENIZERS)}")
        h, w, d = x.shape[-3:]
        lead = x.shape[:-3]
        if self.kind == "perconv":
            return x.reshape(lead + (h * w, d))
        if self.kind == "perfeat":
            return jnp.swapaxes(x.reshape(lead + (h * w, d)), -1, -2)
        if self.kind == "persamp":
            return x.reshape(lead + (1, h * w * d))
        if self.kind == "shuffled":
            perm = np.random.default_rng(self.seed).permutation(h * w * d)
            return _flat(x, 3)[..., perm].reshape(lead + (h * w, d))
        if self.patch > min(h, w):
            raise ValueError(f"bottleneck.patch: {self.patch} exceeds the feature map ({h}x{w})")
        flat_in = x.reshape((-1, h, w, d))
        if self.kind == "perpatch":
            y = Conv(self.embed, (self.patch, self.patch), (self.patch, self.patch), padding="VALID",
                     name="patch_embed")(flat_in)
        else:
            y = nn.avg_pool(flat_in, (self.patch, self.patch), (self.patch, self.patch), padding="VALID")
        return y.reshape(lead + (y.shape[1] * y.shape[2], y.shape[3]))


def aggregate(tokens: jax.Array, how: str) -> jax.Array:
    """Tokens ``[..., m, k]`` -> a vector: ``flatten`` (m * k), ``sum`` or ``mean`` (k)."""
    if how == "flatten":
        return _flat(tokens, 2)
    if how == "sum":
        return tokens.sum(-2)
    if how == "mean":
        return tokens.mean(-2)
    raise ValueError(f"aggregate: {how!r} is not one of {', '.join(AGGREGATIONS)}")


class Bottleneck(nn.Module):
    """Feature map -> vector (``flatten``, ``gap``, tokens then ``aggregate``) or, with
    ``keep_tokens``, tokens for a mixture of experts (``flatten`` / ``gap`` then give one token)."""

    kind: str = "flatten"
    aggregate: str = "flatten"
    keep_tokens: bool = False
    patch: int = 3
    embed: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kind not in BOTTLENECKS:
            raise ValueError(f"bottleneck: {self.kind!r} is not one of {', '.join(BOTTLENECKS)}")
        x = spatial(x)
        if self.kind == "flatten":
            y = _flat(x, 3)
        elif self.kind == "gap":
            y = x.mean((-3, -2))
        else:
            tokens = Tokenizer(self.kind, self.patch, self.embed, name="tokenizer")(x)
            return tokens if self.keep_tokens else aggregate(tokens, self.aggregate)
        return y[..., None, :] if self.keep_tokens else y
