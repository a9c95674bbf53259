"""What the training loop runs after an update: measure neuron activity every ``every`` updates and
reset inactive neurons every ``reset_every`` updates, inside the jitted loop.

The agent provides ``network``, ``loss(params, batch)``, ``init(key)`` (a fresh state, whose parameters
carry each layer's initialiser) and ``loss_batch(state, rollout)``; its state has ``params``,
``opt_state`` and ``step``. Updates without a measurement log NaN, which the run log skips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from plastix.plasticity.metrics import GRAMA_MODES, METRICS, activity
from plastix.plasticity.probe import probe
from plastix.plasticity.resets import RESETS, inactive, plan, reset_neurons


@dataclass(frozen=True)
class PlasticityConfig:
    """Neuron-activity diagnostics and resets."""

    metrics: str = ""
    """Comma-separated diagnostics: dormant, grama, srank, norms (empty: none)."""
    every: int = 10
    """Updates between measurements."""
    tau: float = 0.1
    """Score threshold: a neuron is dormant / GraMa-inactive when its normalised score is <= tau. No single
    published default: Sokar et al. report several small taus (up to 0.1, used here for monitoring) and
    the public GraMa code resets at 0.01; set it per experiment (regrama_demo uses 0.025)."""
    grama_mode: str = "output"
    """GraMa's gradient: output (|dL/dz| per sample) or weight (mean |dL/dW| of the incoming kernel)."""
    reset: str = "none"
    """none, redo (reset dormant neurons) or regrama (reset GraMa-inactive neurons)."""
    reset_every: int = 100
    """Updates between resets."""
    probe_samples: int = 256
    """Samples of the update's batch the probe reads."""

    @property
    def metric_names(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.metrics.split(",") if m.strip())

    @property
    def active(self) -> bool:
        return bool(self.metric_names) or self.reset != "none"


def check(cfg: PlasticityConfig, prefix: str = "plasticity.") -> None:
    """Raise ``ValueError`` naming the field for settings the hook cannot honour."""
    for m in cfg.metric_names:
        if m not in METRICS:
            raise ValueError(f"{prefix}metrics: {m!r} is not one of {', '.join(METRICS)}")
    if cfg.reset not in RESETS:
        raise ValueError(f"{prefix}reset: {cfg.reset!r} is not one of {', '.join(RESETS)}")
    if cfg.grama_mode not in GRAMA_MODES:
        raise ValueError(f"{prefix}grama_mode: {cfg.grama_mode!r} is not one of {', '.join(GRAMA_MODES)}")
    for name in ("every", "reset_every", "probe_samples"):
        if getattr(cfg, name) <= 0:
            raise ValueError(f"{prefix}{name}: must be positive, got {getattr(cfg, name)}")
    if cfg.tau < 0:
        raise ValueError(f"{prefix}tau: must be >= 0, got {cfg.tau}")


def make_hook(agent: Any, cfg: PlasticityConfig, example_obs: jax.Array):
    """``(state, rollout, key) -> (state, metrics)`` for the loop, or None when nothing is asked. The
    probe batch (``agent.loss_batch``) is built only on the updates that measure or reset."""
    if not cfg.active:
        return None
    names = cfg.metric_names
    reset_plan = plan(agent.network, agent.init(jax.random.PRNGKey(0)).params, example_obs) \
        if cfg.reset != "none" else None

    def batch_of(state, rollout):
        batch = agent.loss_batch(state, rollout)
        return jax.tree.map(lambda x: x[: cfg.probe_samples], batch)

    def measure(state, rollout):
        batch = batch_of(state, rollout)
        layers, grads = probe(lambda p: agent.loss(p, batch), state.params)
        return activity(layers, state.params, grads, cfg.tau, names, cfg.grama_mode)

    def do_reset(state, rollout, key):
        batch = batch_of(state, rollout)
        layers, _ = probe(lambda p: agent.loss(p, batch), state.params)
        masks = inactive(layers, cfg.reset, cfg.tau, cfg.grama_mode)
        fresh = agent.init(key).params
        params, opt_state = reset_neurons(state.params, state.opt_state, fresh, masks, reset_plan)
        count = sum(m.sum() for m in masks.values())
        total = sum(m.size for m in masks.values())
        return state.replace(params=params, opt_state=opt_state), count / max(total, 1)

    def hook(state, rollout, key):
        metrics = {}
        if names:
            template = jax.eval_shape(measure, state, rollout)
            nan = jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), template)
            metrics = jax.lax.cond(state.step % cfg.every == 0, lambda: measure(state, rollout), lambda: nan)
        if reset_plan is not None:
            state, fraction = jax.lax.cond(
                state.step % cfg.reset_every == 0, lambda s: do_reset(s, rollout, key),
                lambda s: (s, jnp.float32(jnp.nan)), state)
            metrics["activity/reset_fraction"] = jnp.asarray(fraction, jnp.float32)
        return state, metrics

    return hook
