"""Neuron-activity diagnostics over a `probe`: tau-dormant and GraMa scores and ratios, effective rank,
feature, parameter and gradient norms.

A score normalises a per-neuron magnitude by its layer's mean (``s_i = m_i / mean_k m_k``): a neuron is
*dormant* when its mean |activation| score is <= tau (Sokar et al. 2023) and *GraMa-inactive* when its
gradient-magnitude score is <= tau (Liu et al. 2025). Two readings of "gradient magnitude" exist:

- ``"output"`` (default): mean over samples (and positions, slots) of |dL/dz_i| per sample, z_i the
  neuron's pre-activation (the gradient its own parameters receive; zero for a dead ReLU unit);
- ``"weight"``: mean of |dL/dW| over the neuron's incoming kernel column (a public multi-task SAC
  implementation's choice; the batch sum inside dL/dW lets signs cancel).

Experts are normalised each on its own (an expert is its own layer). Ratios are per layer and overall
(all neurons of all layers together).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from plastix.fields import Field, Reduce
from plastix.plasticity.probe import Layer

GRAMA_MODES = ("output", "weight")
METRICS = ("dormant", "grama", "srank", "norms")

_M = Reduce.MEASURED
ACTIVITY_FIELDS = (
    Field("activity/dormant", "share of neurons", "tau-dormant neurons over all neuron layers (Sokar et al.)",
          _M),
    Field("activity/dormant/<layer>", "share", "the same per layer", _M),
    Field("activity/grama", "share of neurons", "GraMa-inactive neurons (gradient-magnitude score <= tau)",
          _M),
    Field("activity/grama/<layer>", "share", "the same per layer", _M),
    Field("activity/srank/<layer>", "count", "effective rank of the layer's features (delta 0.01; from their "
          "Gram matrix; not for expert layers)", _M),
    Field("activity/feature_norm/<layer>", "L2 norm", "mean norm of a sample's activation vector", _M),
    Field("activity/param_norm", "L2 norm", "global parameter norm of the probed network", _M),
    Field("activity/grad_norm", "L2 norm", "global gradient norm of the probed network", _M),
)
"""What `activity` logs; with several networks (an actor and critics) each is ``activity/<network>/...``."""


def _normalised(per_neuron: jax.Array) -> jax.Array:
    return per_neuron / (per_neuron.mean(-1, keepdims=True) + 1e-8)


def _per_neuron(x: jax.Array, stacked: bool) -> jax.Array:
    """Mean |x| over every axis but the neurons (and the expert axis when stacked)."""
    axes = tuple(range(1 if stacked else 0, x.ndim - 1))
    return jnp.abs(x).mean(axes) if axes else jnp.abs(x)


def activation_scores(layer: Layer) -> jax.Array:
    """tau-dormant scores ``[neurons]`` (``[experts, neurons]`` when stacked)."""
    return _normalised(layer.activation)


def grama_scores(layer: Layer, mode: str = "output") -> jax.Array:
    """GraMa scores from the output gradient or the incoming-weight gradient (see the module doc)."""
    if mode == "output":
        return _normalised(layer.grad)
    if mode == "weight":
        return _normalised(_per_neuron(layer.kernel_grad, layer.stacked))
    raise ValueError(f"plasticity.grama_mode: {mode!r} is not one of {', '.join(GRAMA_MODES)}")


def _effective_rank(sv: jax.Array, delta: float) -> jax.Array:
    sv = jnp.sort(sv)[::-1]
    cum = jnp.cumsum(sv) / (sv.sum() + 1e-12)
    return (jnp.argmax(cum >= 1.0 - delta) + 1).astype(jnp.float32)


def srank(features: jax.Array, delta: float = 0.01) -> jax.Array:
    """Effective rank (Kumar et al. 2021): the fewest singular values holding 1 - delta of their sum,
    for features ``[samples..., d]``."""
    return _effective_rank(jnp.linalg.svd(features.reshape(-1, features.shape[-1]), compute_uv=False), delta)


def gram_srank(gram: jax.Array, delta: float = 0.01) -> jax.Array:
    """`srank` from the features' Gram matrix ``F^T F`` (any positive scale): its singular values (its
    eigenvalues: it is symmetric and positive semi-definite) are the squared singular values of ``F``. An
    SVD, not ``eigh``: batched over seeds, XLA:CPU's eigh solver can hang where several host devices
    share its thread pool."""
    return _effective_rank(jnp.sqrt(jnp.linalg.svd(gram, compute_uv=False)), delta)


def global_norm(tree: Any) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def _ratios(scores: dict[str, jax.Array], tau: float, prefix: str) -> dict[str, jax.Array]:
    out = {f"{prefix}/{name}": (s <= tau).mean() for name, s in scores.items()}
    dormant = sum((s <= tau).sum() for s in scores.values())
    total = sum(s.size for s in scores.values())
    out[prefix] = dormant / max(total, 1)
    return out


def activity(layers: dict[str, Layer], params: Any = None, grads: Any = None, tau: float = 0.1,
             metrics=METRICS, grama_mode: str = "output") -> dict:
    """Scalar diagnostics to log, named ``activity/<metric>[/<layer>]``."""
    for m in metrics:
        if m not in METRICS:
            raise ValueError(f"plasticity.metrics: {m!r} is not one of {', '.join(METRICS)}")
    out: dict[str, jax.Array] = {}
    if "dormant" in metrics:
        out |= _ratios({n: activation_scores(layer) for n, layer in layers.items()}, tau, "activity/dormant")
    if "grama" in metrics:
        out |= _ratios({n: grama_scores(layer, grama_mode) for n, layer in layers.items()}, tau,
                       "activity/grama")
    if "srank" in metrics:  # from the probe's Gram matrices (``probe(..., gram=True)``); not per expert
        for name, layer in layers.items():
            if not layer.stacked and layer.gram is not None:
                out[f"activity/srank/{name}"] = gram_srank(layer.gram)
    if "norms" in metrics:
        for name, layer in layers.items():
            out[f"activity/feature_norm/{name}"] = jnp.mean(layer.feature_norm)
        if params is not None:
            out["activity/param_norm"] = global_norm(params)
        if grads is not None:
            out["activity/grad_norm"] = global_norm(grads)
    return out
