"""The agent contract every loop and tool relies on, as code.

An agent is a plain object with pure, jit-able methods over a state pytree (checkpointed whole):

- ``init(key) -> state``;
- ``act(state, obs, key, train) -> (action, aux)``: ``train=False`` is evaluation (greedy, eps_eval,
  noise-free: whatever the algorithm evaluates with); ``aux`` is what ``learn`` needs about the action;
- ``learn(state, transitions, last_obs, key, iteration, update=None) -> (state, metrics)``: the agent's
  own work after the loop has stepped its envs ``steps_per_iteration`` times (PPO: GAE and epochs; DQN:
  store, then update at the replay ratio). ``iteration`` is the global iteration index, the same for
  every seed, so schedules keyed on it stay real branches under ``vmap``. ``update``: None decides in
  the graph from ``schedule`` (the device loop); the host loop passes the decision as a Python bool
  and compiles both versions, because XLA's CPU runtime runs a network inside a conditional or a loop
  several times slower than in straight-line code (a Nature CNN update: 0.55 s against 0.10 s). Each
  key of ``metrics`` is one of the class's ``fields`` (`plastix.fields`: its unit, meaning and how the
  run log reduces it over a chunk);
- ``final_obs``: where ``Transitions.next_obs`` must hold the observation an episode ended on
  (`Env.step_batch`): ``done`` (DQN, SAC: every stored transition), ``truncated`` (PPO's bootstrap) or
  ``none``; other rows hold the next observation;
- ``schedule(iteration) -> (updated, updates_done)``: whether this iteration ran a gradient update and
  how many it has run in all, which the plasticity hook uses for its cadence;
- ``plastic_nets()``: each trainable network by name as a `PlasticNet` (probes, resets), and
  ``probe_batch(state, transitions, last_obs, key, size)``: the batch (about ``size`` samples) their
  losses are probed on;
- optionally ``fuses_probe = True``: ``learn`` then takes ``measure``, a function ``(net name, loss,
  params) -> (grads, aux, metrics)`` from the plasticity hook (`plastix.plasticity.hook`), uses it for
  one gradient step of each update in place of ``jax.grad`` and returns its metrics with its own, so
  measuring neuron activity costs no second pass (PPO).

Each agent class brings its config dataclass (``config_class``; ``RunConfig`` holds one section per
agent, ``--ppo.*``, ``--dqn.*``), the action kinds it accepts, ``check(config, spec, total_steps)``
raising ``ValueError`` that names the field, and ``env_steps(config)``: env steps one iteration takes
per seed, which the planner divides the budget by.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from plastix.envs.api import EnvSpec
from plastix.fields import Field


@struct.dataclass
class Transitions:
    """``[T, N]`` steps from the loop: ``next_obs`` is the observation each step ended on (the
    terminal one where an episode ended, before the auto-reset, as far as the agent's ``final_obs``
    asks); ``aux`` is what ``act`` returned."""

    obs: Any
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    next_obs: Any
    aux: Any


@dataclass(frozen=True)
class PlasticNet:
    """One network of an agent as the plasticity tools see it.

    ``params`` / ``opt_state`` name the state fields holding it; ``targets`` the fields of target
    copies that follow its resets (same fresh incoming weights, zeroed outgoing ones, so they too
    are unchanged in output); ``loss(state, params, batch)`` is the loss its probe differentiates;
    ``example`` a batch of one input for tracing its wiring.
    """

    module: nn.Module
    loss: Callable[[Any, Any, Any], Any]
    example: tuple
    params: str = "params"
    opt_state: str = "opt_state"
    targets: tuple[str, ...] = ()


def periodic_schedule(iteration: jax.Array, warmup: int, period: int) -> tuple[jax.Array, jax.Array]:
    """The off-policy agents' `Agent.schedule`: updates at iterations ``i`` with ``i + 1 >= warmup`` and
    ``(i + 1) % period == 0``; also how many such iterations there have been up to ``i``."""
    n = iteration + 1
    started = n >= warmup
    # plain arithmetic: numpy in, numpy out (the host loop asks on the host, with no device round trip)
    return started & (n % period == 0), started * (n // period - (warmup - 1) // period)


def gated(update: bool | None, updated: jax.Array, run: Callable[[], Any], skip: Callable[[], Any]) -> Any:
    """``run()`` where the schedule updates, else ``skip()`` (same structure): a ``lax.cond`` on
    ``updated`` when ``update`` is None, straight-line code when the caller knows (a Python bool)."""
    if update is None:
        return jax.lax.cond(updated, run, skip)
    return run() if update else skip()


def store_and_update(replay: Any, state: Any, transitions: Transitions, update: bool | None,
                     updated: jax.Array, run: Callable[[Any], tuple[Any, dict]],
                     kept: Callable[[Any], Any]) -> tuple[Any, Any, dict]:
    """The off-policy agents' `learn` pattern: store the iteration's one step in ``state.replay``, then
    ``run(state) -> (changed, metrics)`` where the schedule updates (`gated`), else ``kept(state)`` (the
    same fields, unchanged) and zero metrics. Only what an update changes passes through the branch:
    the buffer is neither operand nor output of a ``lax.cond`` (XLA would copy it). Returns ``(state
    with the step stored, changed, metrics)``."""
    t = jax.tree.map(lambda x: x[0], transitions)  # one step per iteration
    state = state.replace(replay=replay.add(state.replay, t.obs, t.action, t.reward, t.terminated,
                                            t.truncated, t.next_obs))
    zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), jax.eval_shape(run, state)[1])
    changed, metrics = gated(update, updated, lambda: run(state), lambda: (kept(state), zeros))
    return state, changed, metrics


def unrolled(step: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any) -> tuple[Any, Any]:
    """``lax.scan(step, carry, xs)`` written out (a few gradient steps; ``xs`` any pytree stacked on
    axis 0): straight-line code, which XLA's CPU runtime runs several times faster than a loop around
    a network with convolutions."""
    length = len(jax.tree.leaves(xs)[0])
    if not length:  # nothing to write out: an empty scan has the outputs' shapes
        return jax.lax.scan(step, carry, xs)
    outs = []
    for i in range(length):
        carry, out = step(carry, jax.tree.map(lambda x, i=i: x[i], xs))
        outs.append(out)
    return carry, jax.tree.map(lambda *x: jnp.stack(x), *outs)


def _convolves(jaxpr: Any) -> bool:
    """Whether a jaxpr (or any jaxpr inside it: a loop's body, a branch, a custom rule) convolves."""
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "conv_general_dilated":
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns") and _convolves(inner):
                    return True
    return False


def convolves(module: nn.Module, *example: Any) -> bool:
    """Whether ``module`` on ``example`` inputs runs a convolution (read from its init's jaxpr: nothing
    is computed)."""
    key = jax.random.PRNGKey(0)
    init = lambda k: module.init({"params": k, "noise": k}, *example)  # noqa: E731
    return _convolves(jax.make_jaxpr(init)(key).jaxpr)


def loops_slow(*nets: tuple[nn.Module, tuple]) -> bool:
    """Whether the backend runs these ``(module, example)`` networks' gradients several times slower
    inside a loop or a conditional than as straight-line code: XLA:CPU with convolutions (a Nature-CNN
    update 10-13x, jax-ml/jax#12868). The one place that decides where loops are written out (PPO's
    epochs) and iterations dispatched from the host (`plastix.run.loop.DeviceLoop`)."""
    return jax.default_backend() == "cpu" and any(convolves(module, *example) for module, example in nets)


class Agent(Protocol):
    name: ClassVar[str]
    config_class: ClassVar[type]
    action_kinds: ClassVar[tuple[str, ...]]
    fields: ClassVar[tuple[Field, ...]]  # what its ``learn`` metrics are: units, reduction (plastix.fields)
    num_envs: int
    steps_per_iteration: int
    final_obs: str

    def __init__(self, spec: EnvSpec, config: Any, num_iterations: int, net: Any) -> None: ...

    @staticmethod
    def env_steps(config: Any) -> int: ...

    @staticmethod
    def check(config: Any, spec: EnvSpec, total_steps: int) -> None: ...

    def init(self, key: jax.Array) -> Any: ...

    def act(self, state: Any, obs: Any, key: jax.Array, train: bool = True) -> tuple[jax.Array, Any]: ...

    def learn(self, state: Any, transitions: Transitions, last_obs: Any, key: jax.Array,
              iteration: jax.Array, update: bool | None = None) -> tuple[Any, dict]: ...

    def schedule(self, iteration: jax.Array) -> tuple[jax.Array, jax.Array]: ...

    def plastic_nets(self) -> dict[str, PlasticNet]: ...

    def probe_batch(self, state: Any, transitions: Transitions, last_obs: Any, key: jax.Array,
                    size: int) -> Any: ...
