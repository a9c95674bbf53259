"""Mixtures of experts over tokens ``[..., m, d]``: SoftMoE, Top-k, expert choice, and task routing.

Experts are stacked (``nn.vmap``): each kernel carries the expert axis first, and so do the experts'
neuron layers. An expert's ``out`` is its output width: ``None`` for the token width (the SoftMoE
papers' experts), 0 for no output layer (the expert is its hidden layers). Every layer sows its routing
statistics into the ``"moe"`` collection (``load``: the share of routing mass each expert receives,
``[n]``; ``entropy``: the mean entropy of a token's combine / router weights; ``dropped``: the share of
token assignments lost to capacity) and its auxiliary loss, already weighted, into ``"losses"``: agents
add ``sum(losses)`` to their own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from plastix.fields import Field
from plastix.nets.neurons import ACTIVATIONS, PERTURBATIONS, TAPS, expose
from plastix.nets.per_seed import Dense
from plastix.nets.torsos import activation_fn

MOE_STATS = "moe"
LOSSES = "losses"
AUX_LOSSES = ("entropy", "importance", "load")
MOE_FIELDS = (
    Field("moe/<layer>/load_imbalance", "ratio", "largest expert's share of the tokens x number of experts "
          "(1 = balanced)"),
    Field("moe/<layer>/entropy", "nats", "mean entropy of the routing distribution"),
    Field("moe/<layer>/dropped", "share of tokens", "tokens beyond every chosen expert's capacity (Top-k)"),
)
"""What `routing_metrics` logs per MoE layer (``<layer>`` its module path; SAC: ``moe/actor/<layer>/...``,
``moe/critic/<layer>/...``)."""


class Expert(nn.Module):
    """``Dense -> activation`` per width in ``hidden``, then a linear ``Dense(out)`` unless ``out`` is 0,
    its initial weights scaled by ``out_scale`` (experts that replace an output head start at the head's
    scale: 0.01 for a policy's logits, so a mixture and the single network differ by the experts alone)."""

    hidden: Sequence[int] = (512,)
    out: int = 0
    activation: str = "relu"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = activation_fn(self.activation)
        # flax's Dense, not per_seed's: the experts' stacking axis stays one batched product
        for i, width in enumerate(self.hidden):
            x = nn.Dense(width, kernel_init=nn.initializers.xavier_uniform(), name=f"dense_{i}")(x)
            x = expose(self, f"dense_{i}", x, act)
        if self.out:
            init = nn.initializers.variance_scaling(self.out_scale**2, "fan_avg", "uniform")  # xavier x scale
            x = nn.Dense(self.out, kernel_init=init, name=f"dense_{len(self.hidden)}")(x)
        return x


def stacked_experts(n: int, hidden: Sequence[int], out: int, activation: str, name: str = "experts",
                    out_scale: float = 1.0):
    """``n`` experts applied to ``[n, ...]`` inputs (one slice each), parameters stacked on axis 0."""
    stacked = nn.vmap(Expert, in_axes=0, out_axes=0, axis_size=n, split_rngs={"params": True},
                      variable_axes={"params": 0, ACTIVATIONS: 0, PERTURBATIONS: 0, TAPS: 0})
    return stacked(tuple(hidden), out, activation, out_scale, name=name)


def capacity(tokens: int, experts: int, capacity_factor: float) -> int:
    """Slots (SoftMoE) or tokens (hard routing) per expert: ``ceil(m * capacity_factor / n)``."""
    return max(1, math.ceil(tokens * capacity_factor / experts))


def _entropy(p: jax.Array, axis: int = -1) -> jax.Array:
    return -(p * jnp.log(p + 1e-9)).sum(axis)


def _sow_stats(module: nn.Module, load: jax.Array, entropy: jax.Array, dropped: jax.Array) -> None:
    module.sow(MOE_STATS, "load", load)
    module.sow(MOE_STATS, "entropy", entropy)
    module.sow(MOE_STATS, "dropped", dropped)


def _batch_mean(x: jax.Array, keep: int) -> jax.Array:
    """Mean over every leading axis, keeping the last ``keep``."""
    return x.reshape((-1,) + x.shape[x.ndim - keep:]).mean(0) if keep else x.mean()


def soft_routing(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """SoftMoE's weights from logits ``[..., m, n, p]``: dispatch (softmax over the m tokens, per slot)
    and combine (softmax over the n * p slots, per token)."""
    dispatch = jax.nn.softmax(logits, axis=-3)
    flat = logits.reshape(logits.shape[:-2] + (-1,))
    return dispatch, jax.nn.softmax(flat, -1).reshape(logits.shape)


class SoftMoE(nn.Module):
    """Soft MoE (Puigcerver et al. 2024) per observation: logits ``X Phi``; dispatch = softmax over
    tokens per slot, combine = softmax over all slots per token; expert e runs on its ``p`` slots.

    ``slots`` per expert defaults to ``ceil(m * capacity_factor / n)``. ``normalize`` L2-normalises X and
    Phi (over d) with a learned scale; ``random_phi`` keeps Phi at its random init (a routing ablation).
    """

    experts: int = 4
    hidden: Sequence[int] = (512,)
    out: int | None = None
    out_scale: float = 1.0
    slots: int = 0
    capacity_factor: float = 1.0
    normalize: bool = False
    random_phi: bool = False
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, task: jax.Array | None = None) -> jax.Array:
        m, d = x.shape[-2:]
        n = self.experts
        p = self.slots or capacity(m, n, self.capacity_factor)
        phi = self.param("phi", nn.initializers.lecun_normal(), (d, n * p)).reshape(d, n, p)
        if self.random_phi:
            phi = jax.lax.stop_gradient(phi)
        if self.normalize:
            scale = self.param("scale", nn.initializers.ones, ())
            x_r = x * jax.lax.rsqrt((x * x).sum(-1, keepdims=True) + 1e-6)
            phi = scale * phi * jax.lax.rsqrt((phi * phi).sum(0, keepdims=True) + 1e-6)
        else:
            x_r = x
        dispatch, combine = soft_routing(jnp.einsum("...md,dnp->...mnp", x_r, phi))
        slots_in = jnp.einsum("...mnp,...md->n...pd", dispatch, x)
        y = stacked_experts(n, self.hidden, d if self.out is None else self.out, self.activation,
                            out_scale=self.out_scale)(slots_in)
        _sow_stats(self, _batch_mean(combine.sum(-1), 1), _batch_mean(_entropy(combine.reshape(
            combine.shape[:-2] + (n * p,))), 0), jnp.zeros(()))
        self.sow(LOSSES, "aux", jnp.zeros(()))
        return jnp.einsum("...mnp,n...pk->...mk", combine, y)


class _Router(nn.Module):
    """Router probabilities ``softmax(Dense(n, no bias)(x))`` and the chosen auxiliary losses."""

    experts: int
    aux: Sequence[str] = ()
    aux_coef: float = 0.01

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for name in self.aux:
            if name not in AUX_LOSSES:
                raise ValueError(f"moe.aux: {name!r} is not one of {', '.join(AUX_LOSSES)}")
        probs = jax.nn.softmax(Dense(self.experts, use_bias=False, name="router")(x), -1)
        n = self.experts
        losses = {
            # sharp routing: mean entropy of each token's router distribution
            "entropy": lambda: _entropy(probs).mean(),
            # balanced importance: squared coefficient of variation of the summed gates per expert
            "importance": lambda: (lambda imp: (imp.var(-1) / (imp.mean(-1) ** 2 + 1e-9)).mean())(
                probs.sum(-2)),
            # Switch Transformer's load loss: n * sum_e (share of tokens whose top-1 is e) * (mean gate e)
            "load": lambda: (n * (jax.nn.one_hot(probs.argmax(-1), n).mean(-2) * probs.mean(-2)).sum(-1)
                             ).mean(),
        }
        total = sum((losses[name]() for name in self.aux), jnp.zeros(()))
        self.sow(LOSSES, "aux", self.aux_coef * total)
        return probs


def topk_assign(probs: jax.Array, k: int, cap: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Top-k assignment with capacity from router probabilities ``[..., m, n]``.

    Returns dispatch ``[..., m, n, cap]`` (one-hot slot of each kept assignment), combine (dispatch x
    gate) and kept ``[..., k * m, n]`` (assignments that found room, first choices first).
    """
    m, n = probs.shape[-2:]
    gates, choice = jax.lax.top_k(probs, k)  # [..., m, k]
    if k > 1:
        gates = gates / gates.sum(-1, keepdims=True)
    order = jnp.swapaxes(jax.nn.one_hot(choice, n), -3, -2)  # [..., k, m, n]: first choices first
    flat = order.reshape(order.shape[:-3] + (k * m, n))
    position = (jnp.cumsum(flat, -2) - 1) * flat
    kept = flat * (position < cap)
    slot = (jax.nn.one_hot(position, cap) * kept[..., None]).reshape(order.shape[:-3] + (k, m, n, cap))
    # a token meets an expert at most once, so summing over choices keeps dispatch one-hot
    return slot.sum(-4), jnp.einsum("...kmnc,...mk->...mnc", slot, gates), kept


class TopKMoE(nn.Module):
    """Hard Top-k routing with capacity: each token goes to its ``k`` most probable experts; each
    expert takes at most ``ceil(m * capacity_factor / n)`` tokens, first choices first and, within a
    choice, in token order; overflowing assignments are dropped (their tokens get no output from that
    expert). Gates are the router probabilities (renormalised over the ``k`` chosen when ``k > 1``)."""

    experts: int = 4
    hidden: Sequence[int] = (512,)
    out: int | None = None
    out_scale: float = 1.0
    k: int = 1
    capacity_factor: float = 1.0
    aux: Sequence[str] = ()
    aux_coef: float = 0.01
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, task: jax.Array | None = None) -> jax.Array:
        m, d = x.shape[-2:]
        n, k = self.experts, self.k
        if not 1 <= k <= n:
            raise ValueError(f"moe.k: must be in 1..{n} (the number of experts), got {k}")
        cap = capacity(m, n, self.capacity_factor)
        probs = _Router(n, tuple(self.aux), self.aux_coef, name="router")(x)
        dispatch, combine, kept = topk_assign(probs, k, cap)
        expert_in = jnp.einsum("...mnc,...md->n...cd", dispatch, x)
        y = stacked_experts(n, self.hidden, d if self.out is None else self.out, self.activation,
                            out_scale=self.out_scale)(expert_in)
        _sow_stats(self, _batch_mean(kept.sum(-2) / (k * m), 1), _batch_mean(_entropy(probs), 0),
                   1.0 - kept.sum((-2, -1)).mean() / (k * m))
        return jnp.einsum("...mnc,n...ck->...mk", combine, y)


def expert_choice_assign(probs: jax.Array, cap: int) -> tuple[jax.Array, jax.Array]:
    """Each expert's ``cap`` highest-scoring tokens from router probabilities ``[..., m, n]``: dispatch
    ``[..., n, cap, m]`` (one-hot token per slot) and the scores ``[..., n, cap]``."""
    score, token = jax.lax.top_k(jnp.swapaxes(probs, -1, -2), cap)
    return jax.nn.one_hot(token, probs.shape[-2]), score


class ExpertChoiceMoE(nn.Module):
    """Expert-choice routing (Zhou et al. 2022): each expert takes the ``ceil(m * capacity_factor /
    n)`` tokens (at most m) that score it highest under the router's softmax over experts; a token's
    output sums, over the experts that chose it, score x expert output. Loads are balanced by
    construction; a token no expert chose gets no output."""

    experts: int = 4
    hidden: Sequence[int] = (512,)
    out: int | None = None
    out_scale: float = 1.0
    capacity_factor: float = 1.0
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, task: jax.Array | None = None) -> jax.Array:
        m, d = x.shape[-2:]
        n = self.experts
        cap = min(m, capacity(m, n, self.capacity_factor))
        probs = _Router(n, name="router")(x)
        dispatch, score = expert_choice_assign(probs, cap)
        expert_in = jnp.einsum("...ncm,...md->n...cd", dispatch, x)
        y = stacked_experts(n, self.hidden, d if self.out is None else self.out, self.activation,
                            out_scale=self.out_scale)(expert_in)
        chosen = dispatch.sum((-3, -2))  # how many experts took each token
        _sow_stats(self, jnp.full((n,), 1.0 / n), _batch_mean(_entropy(probs), 0),
                   (chosen == 0).mean())
        return jnp.einsum("...ncm,...nc,n...ck->...mk", dispatch, score, y)


class TaskMoE(nn.Module):
    """Hard routing by task id (multi-task agents): every token of a sample goes to expert
    ``task % n``. All experts run on every input and the task's output is selected, which is exact and
    simple; it costs ``n`` times one expert."""

    experts: int = 4
    hidden: Sequence[int] = (512,)
    out: int | None = None
    out_scale: float = 1.0
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, task: jax.Array | None = None) -> jax.Array:
        if task is None:
            raise ValueError("moe.kind: 'task' routing needs task ids (a multi-task env)")
        n = self.experts
        select = jax.nn.one_hot(jnp.asarray(task) % n, n)  # [..., n]
        y = stacked_experts(n, self.hidden, x.shape[-1] if self.out is None else self.out, self.activation,
                            out_scale=self.out_scale)(
            jnp.broadcast_to(x, (n,) + x.shape))
        _sow_stats(self, _batch_mean(select, 1), jnp.zeros(()), jnp.zeros(()))
        self.sow(LOSSES, "aux", jnp.zeros(()))
        return jnp.einsum("...n,n...mk->...mk", select, y)


MOE_KINDS = {"soft": SoftMoE, "topk": TopKMoE, "expert_choice": ExpertChoiceMoE, "task": TaskMoE}


COLLECTIONS = (LOSSES, MOE_STATS)  # what a loss's apply collects (``mutable=COLLECTIONS``)


def collected(extra: dict, prefix: str = "moe") -> tuple[jax.Array, dict[str, jax.Array]]:
    """``(aux_loss, metrics)`` from the collections of an apply with ``mutable=COLLECTIONS``: the sum of
    the experts' auxiliary losses (to add to the loss) and their routing metrics under ``prefix``."""
    aux = sum(jax.tree.leaves(extra.get(LOSSES, {})), jnp.zeros(()))
    return aux, routing_metrics(extra.get(MOE_STATS, {}), prefix)


def routing_metrics(stats: dict, prefix: str = "moe") -> dict[str, jax.Array]:
    """Scalars to log from a ``"moe"`` collection: per layer, its entropy and dropped share, and its
    load imbalance (largest expert load x number of experts; 1 is perfectly balanced)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(stats)[0]:
        names = [str(k.key) for k in path if isinstance(k, jax.tree_util.DictKey)]
        layer, stat = "/".join(names[:-1]), names[-1]
        if stat == "load":
            out[f"{prefix}/{layer}/load_imbalance"] = leaf.max() * leaf.shape[-1]
        else:
            out[f"{prefix}/{layer}/{stat}"] = leaf
    return out
