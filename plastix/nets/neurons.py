"""The neuron-layer naming scheme every plastix network follows.

A *neuron layer* is the output of a parameterised layer (a Dense unit, a conv channel, an expert's
hidden unit) and its activation function. The module that computes it calls ``h = expose(self, name, z,
act)`` with the pre-activation ``z``, where ``name`` is the child module (``nn.Dense`` / ``nn.Conv``)
holding its incoming kernel and bias. Then:

- ``z`` passes through ``perturb("<name>_out")``: the gradient of any loss with respect to the
  ``"perturbations"`` collection (zeros when given, a no-op otherwise) is dL/dz, the gradient that reaches
  the neuron's own parameters (zero for a dead ReLU unit);
- ``h = act(z)`` is sown into the ``"activations"`` collection under ``"<name>_out"`` (read it with
  ``apply(..., mutable=["activations"])``);
- the neurons are the last axis of ``h``; the other axes are samples (batch, positions, slots), except
  inside stacked experts, whose activations carry the expert axis first (as their kernels do).

Analyses and resets find a neuron's incoming parameters at the same module path under ``name``; nothing
outside ``nets/`` needs to know a concrete architecture.

Agents run their networks through `apply` (one line instead of ``network.apply({"params": p}, ...)``):
that is the hook `plastix.plasticity.probe` uses to feed perturbations in and read activations out of
any loss, without the agent knowing.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax

ACTIVATIONS = "activations"
PERTURBATIONS = "perturbations"

# set by plasticity.probe while it traces a loss: {"calls": [...], "perturbations": [...] | None}
_PROBE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("plastix_probe", default=None)


def apply(network: nn.Module, params: Any, *args, mutable: Sequence[str] = (), **kwargs):
    """``network.apply({"params": params}, *args, **kwargs)`` (with ``(out, collections)`` when
    ``mutable`` names collections). Under a probe, each call also receives that call's perturbations
    and hands its activations to the probe."""
    state = _PROBE.get()
    mutable = list(mutable)
    if state is None:
        return network.apply({"params": params}, *args, mutable=mutable or False, **kwargs)
    variables = {"params": params}
    if state["perturbations"] is not None:
        variables[PERTURBATIONS] = state["perturbations"][len(state["calls"])]
    out, extra = network.apply(variables, *args, mutable=mutable + [ACTIVATIONS], **kwargs)
    extra = dict(extra)
    state["calls"].append(extra.pop(ACTIVATIONS, {}))
    return (out, extra) if mutable else out


def expose(module: nn.Module, name: str, z: jax.Array, activation: Callable) -> jax.Array:
    """``activation(z)`` for neuron layer ``name``, registered for activation and gradient probes."""
    key = f"{name}_out"
    h = activation(module.perturb(key, z, collection=PERTURBATIONS))
    module.sow(ACTIVATIONS, key, h)
    return h
