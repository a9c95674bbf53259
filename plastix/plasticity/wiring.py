"""Which parameters feed each neuron and which read it, found from the network's own computation.

A reset needs a neuron's incoming weights (its kernel column and bias: the module the naming scheme
names) and its *outgoing* weights: every kernel entry that multiplies the neuron's activation, wherever
it is (the next Dense, a head, the Dense after a flatten or a global average pool, a SoftMoE's Phi and
experts). Rather than knowing architectures, `outgoing` traces the network once (``jax.make_jaxpr``)
and follows each neuron layer's values forward through element-wise and shape operations (reshape,
transpose, broadcast, reductions that keep a neuron's identity) until they meet a parameter in a
``dot_general`` or a convolution: the parameter entries on the contracted index are that neuron's
outgoing weights. Whatever mixes neurons (a matmul with a non-parameter, softmax routing weights) passes
a neuron's identity on only along axes it does not contract.

What "outgoing" means with a skip connection: a residual block's inner neuron is read only by the
block's output Dense (the skip carries the block's *input*, not the neuron), so zeroing that Dense's
rows silences the neuron exactly; the residual stream is not a neuron layer (each coordinate is written
by every block) and is never reset.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.extend.core import Literal

NO = -1  # "no neuron" / "no parameter entry"


def _sub_jaxpr(eqn):
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr", "call"):
        j = eqn.params.get(key)
        if j is not None:
            return j.jaxpr if hasattr(j, "jaxpr") else j
    return None


def _consistent(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Reduce ``x`` over ``axes`` keeping a value only where it is the same all along them."""
    if not axes:
        return x
    lo, hi = x.min(axis=axes), x.max(axis=axes)
    return np.where(lo == hi, lo, NO)


def _fit(m: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """An element-wise operand's map in the output's ``shape``; None for a scalar or one that does not
    broadcast."""
    if m.shape == shape:
        return m
    if m.size == 1:
        return None
    try:
        return np.broadcast_to(m, shape).copy()
    except ValueError:
        return None


def _move(x: np.ndarray, front: tuple[int, ...]) -> np.ndarray:
    """``x`` with ``front`` axes first (in that order), the others after in their order."""
    rest = [a for a in range(x.ndim) if a not in front]
    return np.transpose(x, list(front) + rest)


class _Tracer:
    """Propagates, for one neuron layer, a neuron-id map per value, and a parameter-entry map per value
    derived from parameters; records owners of parameter entries at matmuls and convolutions."""

    def __init__(self, leaf_sizes: list[int]):
        self.owners = [np.full(n, NO, np.int64) for n in leaf_sizes]

    def record(self, neuron: np.ndarray, entries: tuple[int, np.ndarray]) -> None:
        leaf, idx = entries
        ok = (neuron >= 0) & (idx >= 0)
        self.owners[leaf][idx[ok]] = neuron[ok]

    def run(self, jaxpr, taint: dict, param: dict) -> tuple[list, list]:
        env_t, env_p = dict(taint), dict(param)
        get = lambda env, v: None if isinstance(v, Literal) else env.get(v)  # noqa: E731
        for eqn in jaxpr.eqns:
            ins_t = [get(env_t, v) for v in eqn.invars]
            ins_p = [get(env_p, v) for v in eqn.invars]
            if all(t is None for t in ins_t) and all(p is None for p in ins_p):
                continue
            sub = _sub_jaxpr(eqn)
            if sub is not None:
                t_map = {iv: t for iv, t in zip(sub.invars, ins_t, strict=True) if t is not None}
                p_map = {iv: p for iv, p in zip(sub.invars, ins_p, strict=True) if p is not None}
                outs_t, outs_p = self.run(sub, t_map, p_map)
                for ov, t, p in zip(eqn.outvars, outs_t, outs_p, strict=True):
                    if t is not None:
                        env_t[ov] = t
                    if p is not None:
                        env_p[ov] = p
                continue
            out_t, out_p = self.rule(eqn, ins_t, ins_p)
            if out_t is not None:
                env_t[eqn.outvars[0]] = out_t
            if out_p is not None:
                env_p[eqn.outvars[0]] = out_p
        return ([get(env_t, v) for v in jaxpr.outvars], [get(env_p, v) for v in jaxpr.outvars])

    def rule(self, eqn, ins_t, ins_p):
        name, prm = eqn.primitive.name, eqn.params
        shape = tuple(eqn.outvars[0].aval.shape) if eqn.outvars else ()
        if name == "dot_general":
            return self._dot(prm, ins_t, ins_p, shape), None
        if name == "conv_general_dilated":
            return self._conv(prm, ins_t, ins_p), None
        outs = []
        for maps in (ins_t, [p[1] if p is not None else None for p in ins_p]):
            outs.append(self._structural(name, prm, eqn, maps, shape))
        leaf = next((p[0] for p in ins_p if p is not None), None)
        return outs[0], (leaf, outs[1]) if outs[1] is not None else None

    def _structural(self, name, prm, eqn, maps, shape):
        """Index maps through shape / element-wise ops; None when nothing is carried."""
        present = [(i, m) for i, m in enumerate(maps) if m is not None]
        if not present:
            return None
        i, m = present[0]
        if name in ("reshape", "squeeze"):
            return m.reshape(shape)
        if name == "transpose":
            return np.transpose(m, prm["permutation"])
        if name == "broadcast_in_dim":
            view = [1] * len(shape)
            for j, d in enumerate(prm["broadcast_dimensions"]):
                view[d] = m.shape[j]
            return np.broadcast_to(m.reshape(view), shape).copy()
        if name in ("reduce_sum", "reduce_max", "reduce_min", "argmax", "argmin"):
            return _consistent(m, tuple(prm["axes"]))
        if name == "concatenate":
            parts = [maps[k] if maps[k] is not None else np.full(v.aval.shape, NO)
                     for k, v in enumerate(eqn.invars)]
            return np.concatenate(parts, axis=prm["dimension"])
        if name == "slice":
            idx = tuple(slice(s, e, st) for s, e, st in zip(
                prm["start_indices"], prm["limit_indices"], prm["strides"] or [1] * m.ndim, strict=True))
            return m[idx]
        if name == "pad":  # edges only (as max pooling pads): padded positions carry no neuron
            config = prm["padding_config"]
            if all(lo >= 0 and hi >= 0 and not interior for lo, hi, interior in config):
                return np.pad(m, [(lo, hi) for lo, hi, _ in config], constant_values=NO)
            return None
        if name.startswith("reduce_window"):
            per_channel = _consistent(m, tuple(range(m.ndim - 1)))
            return np.broadcast_to(per_channel, shape).copy() if (per_channel >= 0).any() else None
        if name in ("dynamic_slice", "gather", "scatter", "scatter-add", "dynamic_update_slice", "sort",
                    "top_k", "cumsum"):
            return None
        # element-wise (with scalar / same-shape operands): the first operand's map carries over, its
        # gaps filled from the others' (a max over a padded window's slices: the edge slice is NO there)
        fitted = [f for f in (_fit(m, shape) for _, m in present) if f is not None]
        if not fitted:
            return None
        merged = fitted[0].copy()
        for other in fitted[1:]:
            merged = np.where(merged == NO, other, merged)
        return merged

    def _dot(self, prm, ins_t, ins_p, shape):
        (lc, rc), (lb, rb) = prm["dimension_numbers"]
        t_side = next((k for k in (0, 1) if ins_t[k] is not None), None)
        if t_side is None:
            return None
        o = 1 - t_side
        t = ins_t[t_side]
        c_t, c_o = (lc, rc) if t_side == 0 else (rc, lc)
        b_t, b_o = (lb, rb) if t_side == 0 else (rb, lb)
        free_t = tuple(a for a in range(t.ndim) if a not in c_t and a not in b_t)
        if ins_p[o] is not None:  # a parameter reads the neurons: its contracted rows are outgoing
            leaf, pidx = ins_p[o]
            lead = tuple(b_t) + tuple(c_t)
            reduced = _consistent(_move(t, lead), tuple(range(len(lead), t.ndim)))
            pm = _move(pidx, tuple(b_o) + tuple(c_o))
            neuron = reduced.reshape(reduced.shape + (1,) * (pm.ndim - reduced.ndim))
            self.record(np.broadcast_to(neuron, pm.shape), (leaf, pm))
            return None
        # mixing with a non-parameter: identities survive on the free axes only
        kept = _consistent(_move(t, tuple(b_t) + free_t), tuple(range(len(b_t) + len(free_t), t.ndim)))
        # output layout: batch dims, lhs free, rhs free
        n_other_free = len(shape) - len(b_t) - len(free_t)
        if t_side == 0:
            out = kept.reshape(kept.shape + (1,) * n_other_free)
        else:
            out = kept.reshape(kept.shape[: len(b_t)] + (1,) * n_other_free + kept.shape[len(b_t):])
        return np.broadcast_to(out, shape).copy()

    def _conv(self, prm, ins_t, ins_p):
        if ins_t[0] is None or ins_p[1] is None:
            return None
        lhs_spec, rhs_spec, _ = prm["dimension_numbers"]
        per_channel = _consistent(_move(ins_t[0], (lhs_spec[1],)), tuple(range(1, ins_t[0].ndim)))
        leaf, pidx = ins_p[1]
        pm = _move(pidx, (rhs_spec[1],))
        neuron = per_channel.reshape((-1,) + (1,) * (pm.ndim - 1))
        self.record(np.broadcast_to(neuron, pm.shape), (leaf, pm))
        return None


def neuron_ids(shape: tuple[int, ...], stacked: bool) -> np.ndarray:
    """Flat neuron index per element of a neuron layer's value: the last axis, with the expert axis
    (first, when stacked) as the major index."""
    h = shape[-1]
    ids = np.broadcast_to(np.arange(h), shape)
    if stacked:
        ids = ids + h * np.arange(shape[0]).reshape((-1,) + (1,) * (len(shape) - 1))
    return np.ascontiguousarray(ids)


def incoming_kernel(params: Any, layer: tuple[str, ...]) -> Any:
    """The kernel of neuron layer ``layer`` (a path ending in ``<name>_out``), or None."""
    node = params
    for k in layer[:-1] + (layer[-1][: -len("_out")],):
        node = node.get(k) if isinstance(node, dict) else None
        if node is None:
            return None
    return node.get("kernel")


def is_stacked(kernel: Any) -> bool:
    """Stacked experts' kernels carry a leading expert axis: [n, in, out] or [n, kh, kw, in, out]."""
    return kernel is not None and kernel.ndim in (3, 5)


def outgoing(apply_fn, params: Any, perturbations: Any) -> dict:
    """``{layer path: {param path: owner}}``: for each neuron layer (a path in ``perturbations``), every
    parameter leaf that reads it, with ``owner`` an int array of the leaf's shape holding the flat
    neuron index that feeds each entry (-1 elsewhere). ``apply_fn(params, perturbations)`` runs the
    network on a (small) example input."""
    closed = jax.make_jaxpr(apply_fn)(params, perturbations)
    p_leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    z_leaves, _ = jax.tree_util.tree_flatten_with_path(perturbations)
    invars = closed.jaxpr.invars
    p_vars, z_vars = invars[: len(p_leaves)], invars[len(p_leaves):]
    param_maps = {v: (i, np.arange(leaf.size).reshape(leaf.shape)) for i, (v, (_, leaf)) in
                  enumerate(zip(p_vars, p_leaves, strict=True))}
    sizes = [leaf.size for _, leaf in p_leaves]
    result = {}
    for (path, leaf), var in zip(z_leaves, z_vars, strict=True):
        key = tuple(str(k.key) for k in path)
        tracer = _Tracer(sizes)
        ids = neuron_ids(leaf.shape, is_stacked(incoming_kernel(params, key)))
        tracer.run(closed.jaxpr, {var: ids}, param_maps)
        result[key] = {
            tuple(str(k.key) for k in p_path): owner.reshape(p_leaf.shape)
            for (p_path, p_leaf), owner in zip(p_leaves, tracer.owners, strict=True) if (owner >= 0).any()
        }
    return result
