"""PPO (Schulman et al. 2017) in the PureJaxRL / CleanRL form, for discrete actions.

The on-device loop collects ``num_envs x num_steps`` transitions with `PPO.act`, then `PPO.update`
computes GAE and runs ``update_epochs`` epochs of ``num_minibatches`` clipped-objective steps.
Truncated episodes bootstrap from the value of their final observation (``bootstrap_truncated``);
terminated ones do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from plastix.agents.rollout import Rollout
from plastix.envs.api import EnvSpec
from plastix.nets import neurons
from plastix.nets.build import ActorCritic, NetConfig
from plastix.nets.moe import LOSSES, MOE_STATS, routing_metrics


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters; defaults are NAVIX's / PureJaxRL's MiniGrid settings."""

    num_envs: int = 16
    """Parallel environments per seed."""
    num_steps: int = 128
    """Steps per environment in each rollout."""
    update_epochs: int = 1
    """Passes over each rollout."""
    num_minibatches: int = 8
    """Minibatches per epoch; must divide num_envs * num_steps."""
    lr: float = 2.5e-4
    """Adam learning rate (eps 1e-5)."""
    anneal_lr: bool = True
    """Anneal the learning rate linearly to 0 over training."""
    gamma: float = 0.99
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_eps: float = 0.2
    """Ratio clip (and value clip) range."""
    clip_value: bool = True
    """Clip the value loss around the rollout's values (PPO2 / CleanRL)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    bootstrap_truncated: bool = True
    """Bootstrap time-limit truncations from V(final obs) instead of cutting to 0."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


@struct.dataclass
class AgentState:
    """Everything PPO carries between updates (a pytree; checkpointed as is)."""

    params: Any
    opt_state: Any
    step: jax.Array  # number of updates done


def gae(reward, value, next_value, done, gamma: float, lam: float):
    """Generalised advantage estimates over ``[T, N]``; ``next_value`` already zero where terminated.

    ``done`` (terminated or truncated) cuts the lambda-trace at episode boundaries.
    """
    delta = reward + gamma * next_value - value

    def backward(carry, xs):
        d, dn = xs
        adv = d + gamma * lam * (1.0 - dn) * carry
        return adv, adv

    _, adv = jax.lax.scan(backward, jnp.zeros_like(delta[0]), (delta, done), reverse=True)
    return adv, adv + value


class PPO:
    """Discrete-action PPO on one env spec; all methods are pure and jit-able."""

    name = "ppo"
    action_kinds = ("discrete",)

    def __init__(self, spec: EnvSpec, config: PPOConfig, num_updates: int, net: NetConfig | None = None):
        self.spec = spec
        self.config = config
        self.net = net or NetConfig()
        self.network = ActorCritic(self.net, spec.action_space.n)
        grad_steps = max(1, num_updates * config.update_epochs * config.num_minibatches)
        lr = (
            optax.linear_schedule(config.lr, 0.0, grad_steps) if config.anneal_lr else config.lr
        )
        # flatten: one fused update over a raveled parameter vector instead of a few ops per leaf,
        # which is most of an update's cost on CPU for networks this small.
        self.tx = optax.flatten(
            optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(lr, eps=1e-5))
        )

    def apply(self, params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(logits, value)`` for a batch of observations."""
        return neurons.apply(self.network, params, obs)

    def init(self, key: jax.Array) -> AgentState:
        dummy = jnp.zeros((1,) + tuple(self.spec.observation_space.shape), self.spec.observation_space.dtype)
        params = self.network.init(key, dummy)["params"]
        return AgentState(params, self.tx.init(params), jnp.zeros((), jnp.int32))

    def act(self, state: AgentState, obs: jax.Array, key: jax.Array, explore: bool = True):
        """Actions for a batch of observations, and what `update` needs about them."""
        logits, value = self.apply(state.params, obs)
        action = jax.random.categorical(key, logits) if explore else jnp.argmax(logits, -1)
        log_prob = jax.nn.log_softmax(logits)[jnp.arange(action.shape[0]), action]
        return action, {"log_prob": log_prob, "value": value}

    def loss(self, params: Any, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
        """Clipped surrogate + (clipped) value loss - entropy bonus on one minibatch."""
        c = self.config
        (logits, value), extra = neurons.apply(self.network, params, batch["obs"],
                                               mutable=[LOSSES, MOE_STATS])
        log_probs = jax.nn.log_softmax(logits)
        log_prob = jnp.take_along_axis(log_probs, batch["action"][:, None], -1)[:, 0]
        log_ratio = log_prob - batch["log_prob"]
        ratio = jnp.exp(log_ratio)
        adv = batch["advantage"]
        if c.normalize_advantage:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = jnp.maximum(-adv * ratio, -adv * jnp.clip(ratio, 1 - c.clip_eps, 1 + c.clip_eps))
        pg_loss = pg_loss.mean()
        v_err = jnp.square(value - batch["return"])
        if c.clip_value:
            v_clip = batch["value"] + jnp.clip(value - batch["value"], -c.clip_eps, c.clip_eps)
            v_err = jnp.maximum(v_err, jnp.square(v_clip - batch["return"]))
        v_loss = 0.5 * v_err.mean()
        entropy = -(jnp.exp(log_probs) * log_probs).sum(-1).mean()
        moe_aux = sum(jax.tree.leaves(extra.get(LOSSES, {})), jnp.zeros(()))
        total = pg_loss + c.vf_coef * v_loss - c.ent_coef * entropy + moe_aux
        aux = {
            "loss/total": total,
            "loss/policy": pg_loss,
            "loss/value": v_loss,
            "loss/entropy": entropy,
            "loss/approx_kl": ((ratio - 1) - log_ratio).mean(),
            "loss/clip_frac": (jnp.abs(ratio - 1) > c.clip_eps).mean(),
            **routing_metrics(extra.get(MOE_STATS, {})),
        }
        if self.net.moe.kind != "none":
            aux["loss/moe_aux"] = moe_aux
        return total, aux

    def targets(self, params: Any, rollout: Rollout) -> tuple[jax.Array, jax.Array]:
        """GAE advantages and value targets for a rollout."""
        c = self.config
        _, last_value = self.apply(params, rollout.last_obs)
        next_value = jnp.concatenate([rollout.value[1:], last_value[None]], axis=0)
        if c.bootstrap_truncated:
            t, n = rollout.truncated.shape
            final_obs = rollout.final_obs.reshape((t * n,) + rollout.final_obs.shape[2:])
            _, final_value = self.apply(params, final_obs)
            next_value = jnp.where(rollout.truncated, final_value.reshape(t, n), next_value)
        next_value = jnp.where(rollout.terminated, 0.0, next_value)
        done = (rollout.terminated | rollout.truncated).astype(jnp.float32)
        return gae(rollout.reward, rollout.value, next_value, done, c.gamma, c.gae_lambda)

    def loss_batch(self, state: AgentState, rollout: Rollout) -> dict[str, jax.Array]:
        """The rollout as one flat batch for `loss` (GAE targets from ``state``'s parameters)."""
        advantage, returns = self.targets(state.params, rollout)
        flat = lambda x: x.reshape((-1,) + x.shape[2:])  # noqa: E731
        return {
            "obs": flat(rollout.obs),
            "action": flat(rollout.action),
            "log_prob": flat(rollout.log_prob),
            "value": flat(rollout.value),
            "advantage": flat(advantage),
            "return": flat(returns),
        }

    def update(self, state: AgentState, rollout: Rollout, key: jax.Array):
        """GAE, then epochs of shuffled minibatch steps; returns the new state and mean losses."""
        c = self.config
        data = self.loss_batch(state, rollout)
        grad_fn = jax.grad(self.loss, has_aux=True)

        def minibatch_step(carry, batch):
            params, opt_state = carry
            grads, aux = grad_fn(params, batch)
            updates, opt_state = self.tx.update(grads, opt_state, params)
            aux["grad_norm"] = optax.global_norm(grads)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(carry, k):
            perm = jax.random.permutation(k, c.batch_size)
            shuffled = jax.tree.map(
                lambda x: x[perm].reshape((c.num_minibatches, -1) + x.shape[1:]), data
            )
            return jax.lax.scan(minibatch_step, carry, shuffled)

        (params, opt_state), aux = jax.lax.scan(
            epoch, (state.params, state.opt_state), jax.random.split(key, c.update_epochs)
        )
        metrics = jax.tree.map(jnp.mean, aux)
        return AgentState(params, opt_state, state.step + 1), metrics
