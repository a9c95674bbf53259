"""One pass over a batch that returns, for every neuron layer of the network a loss runs, its per-neuron
activity statistics (mean |activation|, mean |dL/dz| over samples, optionally the activations' Gram
matrix) and the gradient of its incoming kernel.

The loss is any ``loss(params) -> scalar`` (or ``(scalar, aux)``) that calls its network through
`plastix.nets.neurons.apply` with the parameters it is given, as every plastix agent does. The probe
differentiates it with respect to the parameters and to zero *taps*, one per neuron layer, named by the
layer's module path (`plastix.nets.neurons`): a tap's gradient is its layer's sums over every sample of
every call. So a layer is identified by its name, never by the order of calls: a loss may call its
network twice, inside ``lax.scan`` or a ``cond``, and each layer reports the statistics of all its
inputs. Works under ``jit`` / ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from plastix.nets import neurons


@struct.dataclass
class Layer:
    """One neuron layer's probe. ``activation`` / ``grad``: mean |h| and mean |dL/dz| per neuron over
    the samples (``[neurons]``, ``[experts, neurons]`` when ``stacked``); ``feature_norm``: the mean norm
    of a sample's activation vector (per expert when stacked); ``gram``: the mean of h h^T over samples
    (``[neurons, neurons]``) when asked, else None; ``kernel_grad``: the incoming kernel's gradient."""

    activation: jax.Array
    grad: jax.Array
    kernel_grad: jax.Array
    feature_norm: jax.Array
    gram: jax.Array | None = None
    stacked: bool = struct.field(pytree_node=False, default=False)


def _path(path) -> tuple[str, ...]:
    return tuple(str(k.key) for k in path)


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        tree = tree.get(k) if isinstance(tree, dict) else None
        if tree is None:
            return None
    return tree


def taps(network: Any, params: Any, example: tuple, gram: bool = False) -> dict:
    """Zero taps for every neuron layer of ``network`` (found by initialising it on ``example``, shapes
    only), nested as its ``"perturbations"`` collection is: ``{statistic: [experts?, neurons]}`` each."""
    variables = jax.eval_shape(network.init, jax.random.PRNGKey(0), *example)
    out: dict = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(variables.get(neurons.PERTURBATIONS, {}))[0]:
        keys = _path(path)
        n = leaf.shape[-1]
        stacked = _stacked(params, keys)
        lead = leaf.shape[:1] if stacked else ()
        tap = {k: jnp.zeros(lead + (n,), jnp.float32) for k in neurons.TAP_SUMS}
        if gram:
            tap["gram"] = jnp.zeros(lead + (n, n), jnp.float32)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = tap
    return out


def _stacked(params: Any, layer: tuple[str, ...]) -> bool:
    """Whether the layer's kernel carries an expert axis (Dense [in, out] / conv [kh, kw, in, out] + 1)."""
    kernel = _at(params, layer[:-1] + (layer[-1][: -len("_out")], "kernel"))
    return kernel is not None and kernel.ndim in (3, 5)


def probe(loss: Callable[[Any], Any], params: Any, network: Any, example: tuple, has_aux: bool = False,
          gram: bool = False):
    """``({layer name: Layer}, parameter gradients)`` for ``loss`` at ``params``, and the loss's aux
    output third when ``has_aux`` (an agent that takes its update's gradient from the probe).

    ``network`` is the module the loss calls with ``params`` and ``example`` a batch it accepts (for the
    layers' shapes); ``gram`` adds each layer's Gram matrix (for the effective rank). Layer names are
    module paths joined by ``/`` (``actor_torso/torso/dense_0``). A loss that never calls ``network``
    through `neurons.apply` with ``params`` is refused (its statistics would be silently empty).
    """
    zeros = taps(network, params, example, gram)
    traced_calls = []

    def run(p, t):
        state = {"ids": {id(x) for x in jax.tree.leaves(p)}, "taps": t, "calls": 0}
        token = neurons._PROBE.set(state)
        try:
            value = loss(p)
        finally:
            neurons._PROBE.reset(token)
        traced_calls.append(state["calls"])
        return value if isinstance(value, tuple) else (value, None)

    (param_grads, sums), aux = jax.grad(run, argnums=(0, 1), has_aux=True)(params, zeros)
    if not traced_calls[-1]:
        raise ValueError(f"probe: the loss never calls {type(network).__name__} through "
                         "plastix.nets.neurons.apply with the parameters it is given")
    layers = {}
    is_tap = lambda x: isinstance(x, dict) and "count" in x  # noqa: E731
    for path, tap in jax.tree_util.tree_flatten_with_path(sums, is_leaf=is_tap)[0]:
        keys = _path(path)
        module = keys[:-1] + (keys[-1][: -len("_out")],)
        count = jnp.maximum(tap["count"], 1.0)
        kernel = _at(param_grads, module + ("kernel",))
        if kernel is None:
            kernel = jnp.zeros((0,) + tap["count"].shape[-1:])
        gram_mean = tap["gram"] / count[..., :1, None] if gram else None
        layers["/".join(module)] = Layer(tap["activation"] / count, tap["grad"] / count, kernel,
                                         tap["norm"][..., 0] / count[..., 0], gram_mean,
                                         stacked=count.ndim == 2)  # taps carry the expert axis first
    return (layers, param_grads, aux) if has_aux else (layers, param_grads)
