"""One pass over a batch that returns, for every neuron layer of the networks a loss runs, its
activations, the loss gradient with respect to them, and the gradient of its incoming kernel.

The loss is any ``loss(params) -> scalar`` (or ``(scalar, aux)``) whose networks are called through
`plastix.nets.neurons.apply`, as every plastix agent does: the probe traces it once for shapes, then
differentiates it with respect to the parameters and a zero perturbation of every neuron layer (Flax
``perturb``), so the agent never knows. Works under ``jit`` / ``vmap``.
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
    """One neuron layer's probe: ``activation`` and ``grad`` share a shape (samples..., neurons), with a
    leading expert axis when ``stacked``; ``kernel_grad`` is the incoming kernel's gradient."""

    activation: jax.Array
    grad: jax.Array
    kernel_grad: jax.Array
    stacked: bool = struct.field(pytree_node=False, default=False)


def _flatten(tree: Any) -> dict[tuple[str, ...], Any]:
    """{path of dict keys: leaf} for a nested dict whose leaves are sow tuples or arrays."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(
            tree, is_leaf=lambda x: isinstance(x, tuple | jax.ShapeDtypeStruct | jax.Array))[0]:
        out[tuple(str(k.key) for k in path)] = leaf
    return out


def _nest(flat: dict[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, leaf in flat.items():
        node = tree
        for k in path[:-1]:
            node = node.setdefault(k, {})
        node[path[-1]] = leaf
    return tree


def _run(loss: Callable, params: Any, perturbations) -> tuple[jax.Array, tuple[list, Any]]:
    token = neurons._PROBE.set({"calls": [], "perturbations": perturbations})
    try:
        value = loss(params)
        calls = neurons._PROBE.get()["calls"]
    finally:
        neurons._PROBE.reset(token)
    value, aux = value if isinstance(value, tuple) else (value, None)
    return value, (calls, aux)


def probe(loss: Callable[[Any], Any], params: Any, has_aux: bool = False):
    """``({layer name: Layer}, parameter gradients)`` for ``loss`` at ``params``, and the loss's aux
    output third when ``has_aux`` (an agent that takes its update's gradient from the probe).

    Layer names are module paths joined by ``/`` (``actor_torso/torso/dense_0``), prefixed ``call<i>/``
    when the loss runs networks more than once.
    """
    shapes = jax.eval_shape(lambda p: _run(loss, p, None)[1][0], params)
    zeros = [_nest({path: jnp.zeros(s[0].shape, s[0].dtype) for path, s in _flatten(call).items()})
             for call in shapes]
    (param_grads, pert_grads), (calls, aux) = jax.grad(
        lambda p, z: _run(loss, p, z), argnums=(0, 1), has_aux=True)(params, zeros)
    flat_params = _flatten(param_grads)
    layers = {}
    for i, (acts, grads) in enumerate(zip(calls, pert_grads, strict=True)):
        flat_grads = _flatten(grads)
        for path, act in _flatten(acts).items():
            module = path[:-1] + (path[-1][: -len("_out")],)
            kernel = flat_params.get(module + ("kernel",))
            if kernel is None:
                kernel = jnp.zeros((0,) + act[0].shape[-1:])
            # Dense kernels are [in, out], convs [kh, kw, in, out]; stacked experts add a leading axis
            stacked = kernel.ndim in (3, 5)
            name = "/".join(module) if len(calls) == 1 else f"call{i}/" + "/".join(module)
            layers[name] = Layer(act[0], flat_grads[path], kernel, stacked)
    return (layers, param_grads, aux) if has_aux else (layers, param_grads)
