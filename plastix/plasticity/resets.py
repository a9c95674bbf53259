"""Neuron resets: ReDo (dormant neurons), ReGraMa (gradient-inactive neurons), whole-layer resets, and
shrink-and-perturb.

Resetting neuron i re-draws its incoming kernel column and bias from the layer's own initialiser (a
fresh ``init`` of the network), zeroes its outgoing weights (every parameter entry that reads it, found
by `plastix.plasticity.wiring`), and zeroes the optimiser moments of both, so the network's output is
unchanged right after the reset and the neuron relearns from scratch. Output layers are not neuron
layers and are never reset. A `ResetPlan` is computed once per architecture, on the host; the resets
themselves are pure and jit-able.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from plastix.nets.neurons import PERTURBATIONS
from plastix.plasticity import wiring
from plastix.plasticity.metrics import activation_scores, grama_scores
from plastix.plasticity.probe import Layer

RESETS = ("none", "redo", "regrama")


@dataclass(frozen=True)
class ResetPlan:
    """For each neuron layer (probe name), the parameter leaves it owns entries of: ``incoming`` (its
    kernel columns and biases) and ``outgoing`` (entries that read it); ``owner`` arrays hold the flat
    neuron index per entry, -1 elsewhere. ``sizes`` is each layer's neuron count."""

    incoming: dict[str, dict[tuple[str, ...], np.ndarray]]
    outgoing: dict[str, dict[tuple[str, ...], np.ndarray]]
    sizes: dict[str, int]


def _get(tree: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        tree = tree[k]
    return tree


def plan(network: Any, params: Any, example: Any, *args) -> ResetPlan:
    """Find every neuron layer's incoming and outgoing entries by tracing ``network`` on ``example``
    (a batch of one observation is enough)."""
    variables = jax.eval_shape(network.init, jax.random.PRNGKey(0), example, *args)
    zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), variables.get(PERTURBATIONS, {}))
    out = wiring.outgoing(lambda p, z: network.apply({"params": p, PERTURBATIONS: z}, example, *args),
                          params, zeros)
    incoming, outgoing, sizes = {}, {}, {}
    for layer, readers in out.items():
        module = layer[:-1] + (layer[-1][: -len("_out")],)
        name = "/".join(module)
        own = _get(params, module)
        kernel = own["kernel"]
        stacked = wiring.is_stacked(kernel)
        incoming[name] = {module + ("kernel",): wiring.neuron_ids(kernel.shape, stacked)}
        if "bias" in own:
            incoming[name][module + ("bias",)] = wiring.neuron_ids(own["bias"].shape, stacked)
        outgoing[name] = readers
        sizes[name] = kernel.shape[-1] * (kernel.shape[0] if stacked else 1)
    return ResetPlan(incoming, outgoing, sizes)


def _masks(params: Any, owned: dict[str, dict], masks: dict[str, jax.Array]) -> dict:
    """A bool tree like ``params``: entries owned by a masked neuron of any layer."""
    flat = {tuple(str(k.key) for k in path): jnp.zeros(leaf.shape, bool)
            for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
    for layer, mask in masks.items():
        for path, owner in owned.get(layer, {}).items():
            hit = jnp.where(owner >= 0, jnp.asarray(mask)[np.maximum(owner, 0)], False)
            flat[path] = flat[path] | hit
    leaves = [flat[tuple(str(k.key) for k in path)]
              for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    return jax.tree.unflatten(jax.tree.structure(params), leaves)


def reset_moments(opt_state: Any, params: Any, mask: Any) -> Any:
    """Zero the optimiser's per-parameter statistics where ``mask`` holds, whether the optimiser keeps
    them as trees shaped like ``params`` or as one raveled vector (``optax.flatten``)."""
    structure = jax.tree.structure(params)
    flat_mask, _ = ravel_pytree(mask)
    size = flat_mask.size

    def fix(node):
        if jax.tree.structure(node) == structure and not isinstance(node, jax.Array):
            return jax.tree.map(lambda x, m: jnp.where(m, jnp.zeros_like(x), x), node, mask)
        if isinstance(node, jax.Array) and node.ndim == 1 and node.size == size and size > 1:
            return jnp.where(flat_mask, jnp.zeros_like(node), node)
        return node

    return jax.tree.map(fix, opt_state, is_leaf=lambda n: jax.tree.structure(n) == structure
                        or isinstance(n, jax.Array))


def reset_neurons(params: Any, opt_state: Any, fresh: Any, masks: dict[str, jax.Array],
                  reset_plan: ResetPlan) -> tuple[Any, Any]:
    """Re-initialise the incoming weights of the neurons in ``masks`` (``{layer: bool[neurons]}``) from
    ``fresh``, zero their outgoing weights, and zero the optimiser moments of both."""
    reinit = _masks(params, reset_plan.incoming, masks)
    silence = _masks(params, reset_plan.outgoing, masks)
    params = jax.tree.map(lambda p, f, r, s: jnp.where(r, f, jnp.where(s, jnp.zeros_like(p), p)),
                          params, fresh, reinit, silence)
    touched = jax.tree.map(jnp.logical_or, reinit, silence)
    return params, reset_moments(opt_state, params, touched)


def inactive(layers: dict[str, Layer], method: str, tau: float, grama_mode: str = "output",
             max_fraction: float = 1.0) -> dict:
    """``{layer: bool[neurons]}``: dormant neurons (``redo``) or GraMa-inactive ones (``regrama``); when
    more than ``max_fraction`` of a layer qualifies, only that share with the lowest scores (the GraMa
    paper caps resets at 5% of a layer on Humanoid)."""
    if method not in RESETS or method == "none":
        raise ValueError(f"plasticity.reset: {method!r} is not one of {', '.join(RESETS)}")
    masks = {}
    for n, layer in layers.items():
        score = activation_scores(layer) if method == "redo" else grama_scores(layer, grama_mode)
        scores = score.reshape(-1)
        mask = scores <= tau
        if max_fraction < 1.0:
            rank = jnp.zeros(scores.shape, jnp.int32).at[jnp.argsort(scores)].set(
                jnp.arange(scores.size, dtype=jnp.int32))
            mask &= rank < int(max_fraction * scores.size)
        masks[n] = mask
    return masks


def reset_layers(params: Any, opt_state: Any, fresh: Any, layers: list[str],
                 reset_plan: ResetPlan) -> tuple[Any, Any]:
    """Reset every neuron of the named layers (a full-layer reset with ReDo's rules)."""
    masks = {n: jnp.ones(reset_plan.sizes[n], bool) for n in layers}
    return reset_neurons(params, opt_state, fresh, masks, reset_plan)


def shrink_and_perturb(params: Any, fresh: Any, shrink: float = 0.8, perturb: float = 0.2) -> Any:
    """Ash & Adams (2020): ``shrink * params + perturb * fresh_init``. The 0.8 / 0.2 defaults are a
    common choice in RL plasticity studies, not taken from Ash & Adams' supervised experiments; tune them."""
    return jax.tree.map(lambda p, f: shrink * p + perturb * f, params, fresh)
