"""What the training loop runs after an iteration: measure neuron activity every ``every`` updates and
reset inactive neurons every ``reset_every`` updates, inside the jitted loop, on every network the agent
names (`plastix.agents.api.PlasticNet`).

The agent provides ``plastic_nets()``, ``probe_batch(...)``, ``schedule(iteration)`` and ``init(key)``
(a fresh state, whose parameters carry each layer's initialiser). Iterations without a measurement log
NaN, which the run log skips. An agent with ``fuses_probe`` (PPO) measures inside its update instead:
the loop hands its ``learn`` the hook's ``measure_for(iteration)``, a gradient function that also
returns the activity metrics, and the hook then only resets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from plastix.agents.api import gated
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
    max_reset_fraction: float = 1.0
    """At most this share of a layer is reset at once, the lowest scores first (GraMa on Humanoid: 0.05)."""
    probe_samples: int = 256
    """Samples of the update's batch the probe reads."""
    fused: bool = True
    """Measure inside the update where the agent can (PPO: its first minibatch step takes its gradient
    from the probe, so the measurement reads that minibatch at the parameters before the step, with no
    second pass); false: a separate probe of probe_samples samples after the update, as for the others."""

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
    if not 0.0 < cfg.max_reset_fraction <= 1.0:
        raise ValueError(f"{prefix}max_reset_fraction: must lie in (0, 1], got {cfg.max_reset_fraction}")


def _nan_like(shapes: Any) -> Any:
    return jax.tree.map(lambda s: jnp.full(s.shape, jnp.nan, s.dtype), shapes)


def make_hook(agent: Any, cfg: PlasticityConfig):
    """``(state, transitions, last_obs, key, iteration) -> (state, metrics)`` for the loop, or None when
    nothing is asked. Measures and resets every network ``agent.plastic_nets()`` names (targets follow
    their online network's resets); metric names gain the network's name when there are several. The
    probe batch (``agent.probe_batch``) is built only on the iterations that measure or reset."""
    if not cfg.active:
        return None
    names = cfg.metric_names
    nets = agent.plastic_nets()
    template = jax.eval_shape(agent.init, jax.random.PRNGKey(0))  # shapes only: no replay buffer allocated
    reset_plans = {n: plan(net.module, getattr(template, net.params), *net.example)
                   for n, net in nets.items()} if cfg.reset != "none" else None
    fused = bool(names) and cfg.fused and getattr(agent, "fuses_probe", False)
    label = (lambda n, k: k) if len(nets) == 1 else (lambda n, k: k.replace("activity/", f"activity/{n}/", 1))

    @jax.custom_batching.sequential_vmap
    def fresh(key):
        """Freshly initialised parameters of every net. Seed by seed under ``vmap``: jaxlib's batched
        QR (orthogonal init) can deadlock on CPU, and the fresh replay buffer ``init`` also builds is
        dropped here rather than allocated per seed."""
        state = agent.init(key)
        return {net.params: getattr(state, net.params) for net in nets.values()}

    def batch_of(state, transitions, last_obs, key):
        batch = agent.probe_batch(state, transitions, last_obs, key, cfg.probe_samples)
        return jax.tree.map(lambda x: x[: cfg.probe_samples], batch)

    def layers_of(net, state, batch):
        return probe(lambda p: net.loss(state, p, batch), getattr(state, net.params))

    def measure(state, transitions, last_obs, key):
        batch = batch_of(state, transitions, last_obs, key)
        out = {}
        for n, net in nets.items():
            layers, grads = layers_of(net, state, batch)
            found = activity(layers, getattr(state, net.params), grads, cfg.tau, names, cfg.grama_mode)
            out |= {label(n, k): v for k, v in found.items()}
        return out

    def do_reset(state, transitions, last_obs, key):
        k_batch, k_init = jax.random.split(key)
        batch = batch_of(state, transitions, last_obs, k_batch)
        fresh_params = fresh(k_init)
        count, total, changes = 0, 0, {}
        for n, net in nets.items():
            layers, _ = layers_of(net, state, batch)
            masks = inactive(layers, cfg.reset, cfg.tau, cfg.grama_mode, cfg.max_reset_fraction)
            fresh_net = fresh_params[net.params]
            changes[net.params], changes[net.opt_state] = reset_neurons(
                getattr(state, net.params), getattr(state, net.opt_state), fresh_net, masks,
                reset_plans[n])
            for target in net.targets:
                changes[target], _ = reset_neurons(getattr(state, target), (), fresh_net, masks,
                                                   reset_plans[n])
            count += sum(m.sum() for m in masks.values())
            total += sum(m.size for m in masks.values())
        return changes, count / max(total, 1)

    def measure_for(iteration, when=None):
        """For a fusing agent's ``learn``: ``measure(net name, loss, params) -> (grads, aux, metrics)``,
        the gradient of ``loss(params) -> (scalar, aux)`` taken through the probe, with this iteration's
        activity metrics (NaN off the cadence); None when the hook does not fuse."""
        if not fused:
            return None
        updated, done = agent.schedule(iteration)

        def measure(net, loss, params):
            if when is not None and not when[0]:  # the host loop knows: off the cadence, the plain gradient
                grads, aux = jax.grad(loss, has_aux=True)(params)
                layers = jax.eval_shape(lambda p: probe(loss, p)[0], params)
                found = _nan_like(jax.eval_shape(
                    lambda ls: activity(ls, params, grads, cfg.tau, names, cfg.grama_mode), layers))
            else:
                layers, grads, aux = probe(loss, params, has_aux=True)
                measured = lambda: activity(layers, params, grads, cfg.tau, names, cfg.grama_mode)  # noqa: E731
                # no network inside this branch, so XLA's CPU penalty for networks in a conditional is moot
                found = gated(None if when is None else True, updated & (done % cfg.every == 0), measured,
                              lambda: _nan_like(jax.eval_shape(measured)))
            return grads, aux, {label(net, k): v for k, v in found.items()}

        return measure

    def hook(state, transitions, last_obs, key, iteration, when=None):
        """``when``: ``(measure, reset)`` as Python bools when the caller knows them (`hook.when`; the host
        loop), so each case compiles to straight-line code; None decides in the graph."""
        updated, done = agent.schedule(iteration)
        measuring, resetting = (None, None) if when is None else when
        k_measure, k_reset = jax.random.split(key)
        metrics = {}
        if names and not fused:
            nan = _nan_like(jax.eval_shape(measure, state, transitions, last_obs, k_measure))
            metrics = gated(measuring, updated & (done % cfg.every == 0),
                            lambda: measure(state, transitions, last_obs, k_measure), lambda: nan)
        if reset_plans is not None:
            fields = {f for net in nets.values() for f in (net.params, net.opt_state, *net.targets)}
            kept = {f: getattr(state, f) for f in fields}  # only these go through a branch, not the replay
            changes, fraction = gated(resetting, updated & (done % cfg.reset_every == 0),
                                      lambda: do_reset(state, transitions, last_obs, k_reset),
                                      lambda: (kept, jnp.float32(jnp.nan)))
            state = state.replace(**changes)
            metrics["activity/reset_fraction"] = jnp.asarray(fraction, jnp.float32)
        return state, metrics

    def when(updated: bool, done: int) -> tuple[bool, bool]:
        """On the host: whether an iteration with this schedule measures and resets."""
        return (bool(names) and updated and done % cfg.every == 0,
                reset_plans is not None and updated and done % cfg.reset_every == 0)

    hook.when = when
    hook.measure_for = measure_for
    return hook
