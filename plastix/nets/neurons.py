"""The neuron-layer naming scheme every plastix network follows.

A *neuron layer* is the output of a parameterised layer (a Dense unit, a conv channel, an expert's
hidden unit) and its activation function. The module that computes it calls ``h = expose(self, name, z,
act)`` with the pre-activation ``z``, where ``name`` is the child module (``nn.Dense`` / ``nn.Conv``)
holding its incoming kernel and bias. Then:

- ``z`` passes through ``perturb("<name>_out")``: the gradient of any loss with respect to the
  ``"perturbations"`` collection (zeros when given, a no-op otherwise) is dL/dz, the gradient that reaches
  the neuron's own parameters (zero for a dead ReLU unit); `plastix.plasticity.wiring` traces it;
- ``h = act(z)`` is sown into the ``"activations"`` collection under ``"<name>_out"`` (read it with
  ``apply(..., mutable=["activations"])``);
- where the ``"taps"`` collection holds ``"<name>_out"`` (the probe gives it), ``z`` passes through a tap:
  the identity going forward, whose gradient with respect to the tap variable is the layer's per-neuron
  statistics over every sample the call saw (`tap_statistics`). Gradients add up, so a network called
  twice, or inside ``lax.scan`` / ``cond``, reports the sums over all its calls under the layer's one
  name: no Python-side record of traced values, nothing that depends on call order;
- the neurons are the last axis of ``h``; the other axes are samples (batch, positions, slots), except
  inside stacked experts, whose variables carry the expert axis first (as their kernels do).

Analyses and resets find a neuron's incoming parameters at the same module path under ``name``; nothing
outside ``nets/`` needs to know a concrete architecture.

Agents run their networks through `apply` (one line instead of ``network.apply({"params": p}, ...)``):
that is the hook `plastix.plasticity.probe` uses to hand a loss's calls the taps, without the agent
knowing.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATIONS = "activations"
PERTURBATIONS = "perturbations"
TAPS = "taps"
# a tap's statistics, each ``[neurons]`` (sums over the samples of every call): |h|, |dL/dz|, the
# number of samples and the sum of the samples' activation-vector norms (the last two the same in every
# column); ``gram`` (``[neurons, neurons]``, the sum of h h^T) only where the probe asks for it
TAP_SUMS = ("activation", "grad", "count", "norm")

# set by plasticity.probe while it traces a loss: the parameters it differentiates and their taps
_PROBE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("plastix_probe", default=None)


def apply(network: nn.Module, params: Any, *args, mutable: Sequence[str] = (), **kwargs):
    """``network.apply({"params": params}, *args, **kwargs)`` (with ``(out, collections)`` when
    ``mutable`` names collections). Under a probe, a call with the probed parameters also gets their
    taps."""
    variables = {"params": params}
    state = _PROBE.get()
    if state is not None and {id(x) for x in jax.tree.leaves(params)} <= state["ids"]:
        variables[TAPS] = state["taps"]
        state["calls"] += 1
    return network.apply(variables, *args, mutable=list(mutable) or False, **kwargs)


def expose(module: nn.Module, name: str, z: jax.Array, activation: Callable) -> jax.Array:
    """``activation(z)`` for neuron layer ``name``, registered for activation and gradient probes."""
    key = f"{name}_out"
    z = module.perturb(key, z, collection=PERTURBATIONS)
    if module.has_variable(TAPS, key):
        tap = module.get_variable(TAPS, key)
        z = _tap(z, tap, activation, "gram" in tap)
    h = activation(z)
    module.sow(ACTIVATIONS, key, h)
    return h


def tap_statistics(h: jax.Array, g: jax.Array, gram: bool) -> dict[str, jax.Array]:
    """One call's contribution to a tap: sums over every axis but the last (the neurons) of ``|h|`` and
    ``|g|``, the sample count, the sum of the samples' norms, and ``sum h h^T`` when ``gram``."""
    n = h.shape[-1]
    rows, grads = h.reshape(-1, n).astype(jnp.float32), g.reshape(-1, n).astype(jnp.float32)
    out = {"activation": jnp.abs(rows).sum(0), "grad": jnp.abs(grads).sum(0),
           "count": jnp.full(n, rows.shape[0], jnp.float32),
           "norm": jnp.full(n, jnp.linalg.norm(rows, axis=-1).sum())}
    if gram:
        out["gram"] = rows.T @ rows
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _tap(z: jax.Array, tap: dict, activation: Callable, gram: bool) -> jax.Array:
    return z


def _tap_fwd(z, tap, activation, gram):
    return z, z


def _tap_bwd(activation, gram, z, g):
    return g, tap_statistics(activation(z), g, gram)


_tap.defvjp(_tap_fwd, _tap_bwd)
