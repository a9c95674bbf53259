"""What the training loop runs after an iteration (`PlasticityHook`): measure neuron activity every
``every`` updates and reset inactive neurons every ``reset_every`` updates, inside the jitted loop, on
every network the agent names (`plastix.agents.api.PlasticNet`).

The agent provides ``plastic_nets()``, ``probe_batch(...)``, ``schedule(iteration)`` and ``init(key)``
(a fresh state, whose parameters carry each layer's initialiser). Iterations without a measurement log
NaN, which the run log skips. An agent with ``fuses_probe`` (PPO) measures inside its update instead:
the loop hands its ``learn`` the hook's ``measure_for(iteration)``, a gradient function that also
returns the activity metrics, and the hook then only resets.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from plastix.agents.api import gated
from plastix.fields import Field, Reduce
from plastix.plasticity.metrics import ACTIVITY_FIELDS, GRAMA_MODES, METRICS, activity
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


class Case(NamedTuple):
    """What one iteration does, decided on the host (`PlasticityHook.when`): measure, reset."""

    measure: bool
    reset: bool


RESET_FIELD = Field("activity/reset_fraction", "share", "neurons reset by ReDo / ReGraMa at the chunk's "
                    "resets", Reduce.MEASURED)


class PlasticityHook:
    """Measures neuron activity every ``every`` updates and resets inactive neurons every ``reset_every``
    updates on every network ``agent.plastic_nets()`` names (targets follow their online network's
    resets); metric names gain the network's name when there are several.

    Two choices, both explicit:

    - where the cadence is decided: a call with ``case=None`` decides it in the graph (a branch on the
      iteration's schedule: the device loop's scan); a call with a `Case` (from `when`, on the host) is
      straight-line code for that case (the host loop, the host-dispatched device loop);
    - ``fused``: the agent measures inside its update (``fuses_probe``: PPO takes its first gradient step's
      gradient from the probe, `measure_for`) and the hook then only resets; otherwise the hook probes a
      batch of its own (``agent.probe_batch``) after the update.
    """

    def __init__(self, agent: Any, cfg: PlasticityConfig):
        self.agent, self.cfg = agent, cfg
        self.names = cfg.metric_names
        self.nets = agent.plastic_nets()
        template = jax.eval_shape(agent.init, jax.random.PRNGKey(0))  # shapes only: no replay allocated
        self.reset_plans = {n: plan(net.module, getattr(template, net.params), *net.example)
                            for n, net in self.nets.items()} if cfg.reset != "none" else None
        self.fused = bool(self.names) and cfg.fused and getattr(agent, "fuses_probe", False)

    def _label(self, net: str, metrics: dict) -> dict:
        if len(self.nets) == 1:
            return metrics
        return {k.replace("activity/", f"activity/{net}/", 1): v for k, v in metrics.items()}

    @property
    def fields(self) -> tuple[Field, ...]:
        """The fields this hook logs: the activity fields (per network when the agent has several) and
        the reset fraction."""
        out = []
        if self.names:
            out += [dataclasses.replace(f, name=name) for f in ACTIVITY_FIELDS
                    for net in self.nets for name in self._label(net, {f.name: None})]
        if self.reset_plans is not None:
            out.append(RESET_FIELD)
        return tuple(out)

    def _layers(self, net: str, state: Any, batch: Any, gram: bool) -> tuple[dict, Any]:
        """The probe of network ``net`` on ``batch``; ``gram`` where srank is measured."""
        plastic = self.nets[net]
        return probe(lambda p: plastic.loss(state, p, batch), getattr(state, plastic.params), plastic.module,
                     plastic.example, gram=gram)

    def _activity(self, layers: dict, params: Any, grads: Any) -> dict:
        return activity(layers, params, grads, self.cfg.tau, self.names, self.cfg.grama_mode)

    def _batch(self, state: Any, transitions: Any, last_obs: Any, key: jax.Array) -> Any:
        batch = self.agent.probe_batch(state, transitions, last_obs, key, self.cfg.probe_samples)
        return jax.tree.map(lambda x: x[: self.cfg.probe_samples], batch)

    def measure(self, state: Any, transitions: Any, last_obs: Any, key: jax.Array) -> dict:
        """Every network's activity metrics on a probe batch (the separate probe)."""
        batch = self._batch(state, transitions, last_obs, key)
        out = {}
        for n, net in self.nets.items():
            layers, grads = self._layers(n, state, batch, "srank" in self.names)
            out |= self._label(n, self._activity(layers, getattr(state, net.params), grads))
        return out

    def _fresh(self, key: jax.Array) -> dict:
        """Freshly initialised parameters of every net. Seed by seed under ``vmap``: jaxlib's batched QR
        (orthogonal init) can deadlock on CPU, and the fresh replay buffer ``init`` also builds is dropped
        here rather than allocated per seed."""

        @jax.custom_batching.sequential_vmap
        def fresh(key):
            state = self.agent.init(key)
            return {net.params: getattr(state, net.params) for net in self.nets.values()}

        return fresh(key)

    def reset(self, state: Any, transitions: Any, last_obs: Any, key: jax.Array) -> tuple[dict, jax.Array]:
        """``(changed state fields, fraction of neurons reset)``: the inactive neurons of every network
        re-drawn from a fresh init, their outgoing weights and optimiser moments zeroed."""
        k_batch, k_init = jax.random.split(key)
        batch = self._batch(state, transitions, last_obs, k_batch)
        fresh_params = self._fresh(k_init)
        count, total, changes = 0, 0, {}
        for n, net in self.nets.items():
            layers, _ = self._layers(n, state, batch, False)
            masks = inactive(layers, self.cfg.reset, self.cfg.tau, self.cfg.grama_mode,
                             self.cfg.max_reset_fraction)
            fresh_net = fresh_params[net.params]
            changes[net.params], changes[net.opt_state] = reset_neurons(
                getattr(state, net.params), getattr(state, net.opt_state), fresh_net, masks,
                self.reset_plans[n])
            for target in net.targets:
                changes[target], _ = reset_neurons(getattr(state, target), (), fresh_net, masks,
                                                   self.reset_plans[n])
            count += sum(m.sum() for m in masks.values())
            total += sum(m.size for m in masks.values())
        return changes, count / max(total, 1)

    def measure_for(self, iteration: Any, case: Case | None = None):
        """For a fusing agent's ``learn``: ``measure(net name, loss, params) -> (grads, aux, metrics)``,
        the gradient of ``loss(params) -> (scalar, aux)`` taken through the probe, with this iteration's
        activity metrics (NaN off the cadence); None when the hook does not fuse."""
        if not self.fused:
            return None
        updated, done = self.agent.schedule(iteration)

        def measure(net, loss, params):
            plastic = self.nets[net]
            probed = lambda: probe(loss, params, plastic.module, plastic.example, has_aux=True,  # noqa: E731
                                   gram="srank" in self.names)
            if case is not None and not case.measure:  # known off the cadence: the plain gradient
                grads, aux = jax.grad(loss, has_aux=True)(params)
                layers = jax.eval_shape(lambda: probed()[0])
                found = _nan_like(jax.eval_shape(lambda ls: self._activity(ls, params, grads), layers))
            else:
                layers, grads, aux = probed()
                measured = lambda: self._activity(layers, params, grads)  # noqa: E731
                # no network inside this branch, so XLA's CPU penalty for networks in a conditional is moot
                found = gated(None if case is None else True, updated & (done % self.cfg.every == 0),
                              measured, lambda: _nan_like(jax.eval_shape(measured)))
            return grads, aux, self._label(net, found)

        return measure

    def __call__(self, state: Any, transitions: Any, last_obs: Any, key: jax.Array, iteration: Any,
                 case: Case | None = None) -> tuple[Any, dict]:
        """``(state, metrics)`` after an iteration's update: the separate probe's metrics (NaN off the
        cadence) and ``activity/reset_fraction`` when resetting; ``case`` as in the class doc."""
        updated, done = self.agent.schedule(iteration)
        measuring, resetting = (None, None) if case is None else case
        k_measure, k_reset = jax.random.split(key)
        metrics = {}
        if self.names and not self.fused:
            nan = _nan_like(jax.eval_shape(self.measure, state, transitions, last_obs, k_measure))
            metrics = gated(measuring, updated & (done % self.cfg.every == 0),
                            lambda: self.measure(state, transitions, last_obs, k_measure), lambda: nan)
        if self.reset_plans is not None:
            fields = {f for net in self.nets.values() for f in (net.params, net.opt_state, *net.targets)}
            kept = {f: getattr(state, f) for f in fields}  # only these go through a branch, not the replay
            changes, fraction = gated(resetting, updated & (done % self.cfg.reset_every == 0),
                                      lambda: self.reset(state, transitions, last_obs, k_reset),
                                      lambda: (kept, jnp.float32(jnp.nan)))
            state = state.replace(**changes)
            metrics["activity/reset_fraction"] = jnp.asarray(fraction, jnp.float32)
        return state, metrics

    def when(self, updated: bool, done: int) -> Case:
        """On the host: whether an iteration with this schedule measures and resets."""
        return Case(bool(self.names) and updated and done % self.cfg.every == 0,
                    self.reset_plans is not None and updated and done % self.cfg.reset_every == 0)


def make_hook(agent: Any, cfg: PlasticityConfig) -> PlasticityHook | None:
    """The loop's `PlasticityHook`, or None when nothing is asked."""
    return PlasticityHook(agent, cfg) if cfg.active else None
