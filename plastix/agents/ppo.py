"""PPO (Schulman et al. 2017) in the PureJaxRL / CleanRL form, for discrete actions.

One iteration: the loop collects ``num_envs x num_steps`` transitions with `PPO.act`, then `PPO.learn`
computes GAE and runs ``update_epochs`` epochs of ``num_minibatches`` clipped-objective steps.
With ``critic_epochs`` set apart (decoupled PPO, as in the actor / critic representation study: actor 1
epoch, critic 9 per rollout) the two networks have their own Adam states, the first ``min`` of the two
counts of epochs update both and the rest only the network with more.
Truncated episodes bootstrap from the value of their final observation (``bootstrap_truncated``);
terminated ones do not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from plastix.agents.api import PlasticNet, Transitions, loops_slow, unrolled
from plastix.envs.api import EnvSpec, over_seeds, task_ids
from plastix.fields import Field
from plastix.nets import neurons
from plastix.nets.build import ActorCritic, NetConfig
from plastix.nets.moe import COLLECTIONS, MOE_FIELDS, collected


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyper-parameters; defaults are NAVIX's / PureJaxRL's MiniGrid settings."""

    num_envs: int = 16
    """Parallel environments per seed."""
    num_steps: int = 128
    """Steps per environment in each rollout."""
    update_epochs: int = 1
    """Passes over each rollout (the actor's, when critic_epochs differs)."""
    critic_epochs: int = 0
    """Passes of the value loss over each rollout; 0: update_epochs. Another count decouples the two
    (needs net.shared none): actor and critic then keep separate Adam states and gradient clips."""
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
    eval_greedy: bool = False
    """Evaluate with the most likely action instead of sampling from the policy."""

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps


@struct.dataclass
class Rollout:
    """``[T, N]`` transitions of one iteration plus the observation after the last step."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    log_prob: jax.Array
    value: jax.Array
    last_obs: jax.Array


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


def permutation(key: jax.Array, n: int) -> jax.Array:
    """A uniformly random permutation of ``range(n)`` (int32), drawn like `jax.random.permutation` (rounds
    of sorting random keys) at about a quarter of its cost on CPU: each round sorts one uint32 array whose
    high bits are random and whose low bits are the position, which XLA's CPU sort runs several times
    faster than a key-value sort. Positions tied in one round's random bits keep the previous round's (random)
    order, so the rounds are chosen to make a pair tied in all of them as unlikely as jax's own rounds do."""
    bits = max(1, (n - 1).bit_length())
    if bits > 20:
        return jax.random.permutation(key, n)
    position = jnp.arange(n, dtype=jnp.uint32)
    high = jnp.uint32(~((1 << bits) - 1) & 0xFFFFFFFF)
    perm = position
    for k in jax.random.split(key, -(-3 * bits // (32 - bits))):
        order = jax.lax.sort((jax.random.bits(k, (n,), jnp.uint32) & high) | position) & ~high
        perm = perm[order]
    return perm.astype(jnp.int32)


def check(config: PPOConfig, prefix: str = "ppo.") -> None:
    """Raise ``ValueError`` naming the field for settings PPO cannot honour."""
    for n in ("num_envs", "num_steps", "update_epochs", "num_minibatches", "lr", "max_grad_norm"):
        if getattr(config, n) <= 0:
            raise ValueError(f"{prefix}{n}: must be positive, got {getattr(config, n)!r}")
    for n in ("clip_eps", "ent_coef", "vf_coef"):
        if not getattr(config, n) >= 0:
            raise ValueError(f"{prefix}{n}: must be >= 0, got {getattr(config, n)!r}")
    if config.critic_epochs < 0:
        raise ValueError(f"{prefix}critic_epochs: must be >= 0 (0: update_epochs), got "
                         f"{config.critic_epochs}")
    if config.batch_size % config.num_minibatches:
        raise ValueError(f"{prefix}num_minibatches: {config.num_minibatches} must divide num_envs * "
                         f"num_steps = {config.batch_size}")
    for n in ("gamma", "gae_lambda"):
        if not 0.0 <= getattr(config, n) <= 1.0:
            raise ValueError(f"{prefix}{n}: must lie in [0, 1], got {getattr(config, n)}")


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """Log-density of ``action`` under a diagonal Gaussian, summed over the last axis."""
    z = (action - mean) * jnp.exp(-log_std)
    return (-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)


class PPO:
    """PPO on one env spec, discrete (categorical policy) or continuous (diagonal Gaussian whose samples
    the env clips to its [-1, 1] bounds, log-probabilities on the unclipped sample, as CleanRL); all
    methods are pure and jit-able."""

    name = "ppo"
    config_class = PPOConfig
    action_kinds = ("discrete", "continuous")
    fuses_probe = True
    fields = (
        Field("loss/total", "loss", "`loss/policy + vf_coef loss/value - ent_coef loss/entropy` (+ the "
              "experts' auxiliary losses), over the epochs' minibatches; a NaN or inf stops the run"),
        Field("loss/policy", "loss", "clipped surrogate"),
        Field("loss/value", "loss", "(clipped) value loss"),
        Field("loss/entropy", "nats", "policy entropy"),
        Field("loss/approx_kl", "nats", "KL estimate `(r - 1) - log r`"),
        Field("loss/clip_frac", "share", "share of clipped ratios"),
        Field("loss/moe_aux", "loss", "sum of the Top-k auxiliary losses (with experts)"),
        Field("grad_norm", "L2 norm", "global gradient norm before clipping"),
        *MOE_FIELDS,
    )

    def __init__(self, spec: EnvSpec, config: PPOConfig, num_updates: int, net: NetConfig | None = None):
        self.spec = spec
        self.config = config
        self.num_envs = config.num_envs
        self.steps_per_iteration = config.num_steps
        self.net = net or NetConfig()
        self.continuous = spec.action_space.kind == "continuous"
        self.num_actions = int(spec.action_space.shape[0]) if self.continuous else spec.action_space.n
        self.network = ActorCritic(self.net, self.num_actions, gaussian=self.continuous)
        self.critic_epochs = config.critic_epochs or config.update_epochs
        self.decoupled = self.critic_epochs != config.update_epochs
        self.tx = self._optimiser(num_updates, config.update_epochs)
        self.critic_tx = self._optimiser(num_updates, self.critic_epochs) if self.decoupled else None
        # a critic apart from the actor: one forward pass over the rollout beats one per step
        self.batched_values = self.net.shared == "none"
        # the bootstrap reads final observations only where an episode was truncated
        self.final_obs = "truncated" if config.bootstrap_truncated else "none"
        # epochs and minibatches written out where a loop around the network's gradient is slow
        # (convolutions on CPU); a scan elsewhere (a shorter program, as fast)
        example = jnp.zeros((1,) + tuple(spec.observation_space.shape), spec.observation_space.dtype)
        self.unroll = loops_slow((self.network, (example, task_ids(example, spec))))

    def _optimiser(self, num_updates: int, epochs: int) -> optax.GradientTransformation:
        c = self.config
        grad_steps = max(1, num_updates * epochs * c.num_minibatches)
        lr = optax.linear_schedule(c.lr, 0.0, grad_steps) if c.anneal_lr else c.lr
        # flatten: one fused update over a raveled parameter vector instead of a few ops per leaf,
        # which is most of an update's cost on CPU for networks this small.
        return optax.flatten(optax.chain(optax.clip_by_global_norm(c.max_grad_norm),
                                         optax.adam(lr, eps=1e-5)))

    @staticmethod
    def env_steps(config: PPOConfig) -> int:
        """Env steps per seed in one iteration (one rollout)."""
        return config.batch_size

    @staticmethod
    def check(config: PPOConfig, spec: EnvSpec, total_steps: int) -> None:
        check(config)

    def apply(self, params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(policy, value)`` for a batch of observations (logits, or a Gaussian's ``[mean, log_std]``)."""
        return neurons.apply(self.network, params, obs, task_ids(obs, self.spec))

    def init(self, key: jax.Array) -> AgentState:
        dummy = jnp.zeros((1,) + tuple(self.spec.observation_space.shape), self.spec.observation_space.dtype)
        params = self.network.init(key, dummy, task_ids(dummy, self.spec))["params"]
        opt_state = (self.tx.init(params), self.critic_tx.init(params)) if self.decoupled \
            else self.tx.init(params)
        return AgentState(params, opt_state, jnp.zeros((), jnp.int32))

    def log_prob(self, policy: jax.Array, action: jax.Array) -> jax.Array:
        """Log-probability of ``action`` under the policy output of `apply`."""
        if self.continuous:
            mean, log_std = jnp.split(policy, 2, -1)
            return gaussian_log_prob(mean, log_std, action)
        return jnp.take_along_axis(jax.nn.log_softmax(policy), action[..., None], -1)[..., 0]

    def entropy(self, policy: jax.Array) -> jax.Array:
        """Entropy per sample of the policy output of `apply`."""
        if self.continuous:
            log_std = jnp.split(policy, 2, -1)[1]
            return (log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)).sum(-1)
        log_probs = jax.nn.log_softmax(policy)
        return -(jnp.exp(log_probs) * log_probs).sum(-1)

    def act(self, state: AgentState, obs: jax.Array, key: jax.Array, train: bool = True):
        """Actions for a batch of observations (sampled, also in evaluation unless ``eval_greedy``: the
        most likely action / the Gaussian's mean), and what `learn` needs about them: the log-probability,
        and the value where the critic shares layers with the actor (else `rollout` computes the values
        of the whole rollout in one batch, as the parameters do not change while it is collected)."""
        policy, value = self.apply(state.params, obs)
        greedy = not train and self.config.eval_greedy
        if self.continuous:
            mean, log_std = jnp.split(policy, 2, -1)
            action = mean if greedy else mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)
        else:
            action = jnp.argmax(policy, -1) if greedy else jax.random.categorical(key, policy)
        aux = {"log_prob": self.log_prob(policy, action)}
        return action, aux if self.batched_values else aux | {"value": value}

    def loss(self, params: Any, batch: dict[str, jax.Array]) -> tuple[jax.Array, dict]:
        """Clipped surrogate + (clipped) value loss - entropy bonus on one minibatch."""
        c = self.config
        (policy, value), extra = neurons.apply(self.network, params, batch["obs"],
                                               task_ids(batch["obs"], self.spec),
                                               mutable=COLLECTIONS)
        log_prob = self.log_prob(policy, batch["action"])
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
        entropy = self.entropy(policy).mean()
        moe_aux, routing = collected(extra)
        total = pg_loss + c.vf_coef * v_loss - c.ent_coef * entropy + moe_aux
        aux = {
            "loss/total": total,
            "loss/policy": pg_loss,
            "loss/value": v_loss,
            "loss/entropy": entropy,
            "loss/approx_kl": ((ratio - 1) - log_ratio).mean(),
            "loss/clip_frac": (jnp.abs(ratio - 1) > c.clip_eps).mean(),
            **routing,
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
            next_value = jnp.where(rollout.truncated, self.truncated_values(params, rollout), next_value)
        next_value = jnp.where(rollout.terminated, 0.0, next_value)
        done = (rollout.terminated | rollout.truncated).astype(jnp.float32)
        return gae(rollout.reward, rollout.value, next_value, done, c.gamma, c.gae_lambda)

    def truncated_values(self, params: Any, rollout: Rollout) -> jax.Array:
        """``[T, N]`` values of the final observations, exact where ``truncated`` (elsewhere unused).

        A time limit truncates each env at most ``ceil(T / max_steps)`` times in a rollout, so the
        critic runs on that many rows per env, gathered; more truncations (a task mix's switches) fall
        back to every row (which cost ~5% of PPO's time when it ran on every step)."""
        t, n = rollout.truncated.shape
        final_obs = rollout.final_obs.reshape((t * n,) + rollout.final_obs.shape[2:])
        every_row = lambda: self.apply(params, final_obs)[1]  # noqa: E731
        rows = n * -(-t // max(self.spec.max_steps, 1))
        if rows >= t * n:
            return every_row().reshape(t, n)
        truncated = rollout.truncated.reshape(-1)
        # the padding repeats row 0, whose value is then written to row 0: still its own
        index = jnp.nonzero(truncated, size=rows, fill_value=0)[0]

        def gathered():
            return jnp.zeros(t * n, jnp.float32).at[index].set(self.apply(params, final_obs[index])[1])

        # the largest count over the loop's seeds decides, so under its vmap this stays a branch
        return jax.lax.cond(over_seeds(truncated.sum()) <= rows, gathered, every_row).reshape(t, n)

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

    def schedule(self, iteration: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Every iteration is one update."""
        return np.True_, iteration + 1

    def plastic_nets(self) -> dict[str, PlasticNet]:
        space = self.spec.observation_space
        example = jnp.zeros((1,) + tuple(space.shape), space.dtype)
        loss = lambda state, p, batch: self.loss(p, batch)  # noqa: E731
        return {"actor_critic": PlasticNet(self.network, loss, (example, task_ids(example, self.spec)))}

    def rollout(self, params: Any, transitions: Transitions, last_obs: jax.Array) -> Rollout:
        """The loop's transitions as a `Rollout`, with the values of its observations under ``params`` (the
        parameters that collected it) when `act` left them out."""
        t = transitions
        if "value" in t.aux:
            value = t.aux["value"]
        else:
            flat = t.obs.reshape((-1,) + t.obs.shape[2:])
            value = self.apply(params, flat)[1].reshape(t.reward.shape)
        return Rollout(obs=t.obs, action=t.action, reward=t.reward, terminated=t.terminated,
                       truncated=t.truncated, final_obs=t.next_obs, log_prob=t.aux["log_prob"],
                       value=value, last_obs=last_obs)

    def probe_batch(self, state: AgentState, transitions: Transitions, last_obs: jax.Array, key: jax.Array,
                    size: int):
        return self.loss_batch(state, self.rollout(state.params, transitions, last_obs))

    def learn(self, state: AgentState, transitions: Transitions, last_obs: jax.Array, key: jax.Array,
              iteration: jax.Array, update: bool | None = None, measure: Callable | None = None):
        return self.update(state, self.rollout(state.params, transitions, last_obs), key, measure)

    def update(self, state: AgentState, rollout: Rollout, key: jax.Array, measure: Callable | None = None):
        """GAE, then epochs of shuffled minibatch steps; returns the new state and mean losses.

        ``measure`` (the plasticity hook's, when it fuses): the first minibatch step takes its gradient
        from it, and the update's metrics gain the activity it measured on that minibatch."""
        c = self.config
        data = self.loss_batch(state, rollout)
        grad_fn = jax.grad(self.loss, has_aux=True)
        both_parts = ("actor", "critic")

        def minibatch_step(carry, batch, parts, grads_of=grad_fn):
            params, opt_state = carry
            grads, aux = grads_of(params, batch)
            aux["grad_norm"] = optax.global_norm(grads)
            if not self.decoupled:
                updates, opt_state = self.tx.update(grads, opt_state, params)
                return (optax.apply_updates(params, updates), opt_state), aux
            # separate networks: each optimiser sees its network's gradient (zeros elsewhere, so its
            # moments there stay zero and it never moves the other network)
            states = dict(zip(("actor", "critic"), opt_state, strict=True))
            new = params
            for part, tx in (("actor", self.tx), ("critic", self.critic_tx)):
                if part in parts:
                    updates, states[part] = tx.update(self.only(part, grads), states[part], params)
                    new = optax.apply_updates(new, updates)
            return (new, (states["actor"], states["critic"])), aux

        def shuffled(k):
            perm = permutation(k, c.batch_size)
            return jax.tree.map(lambda x: x[perm].reshape((c.num_minibatches, -1) + x.shape[1:]), data)

        loop = unrolled if self.unroll else jax.lax.scan

        def minibatches(carry, batches, parts):
            return loop(lambda cr, b: minibatch_step(cr, b, parts), carry, batches)

        def epochs(carry, keys, parts):
            return loop(lambda cr, k: minibatches(cr, shuffled(k), parts), carry, keys)

        keys = jax.random.split(key, max(c.update_epochs, self.critic_epochs))
        both = min(c.update_epochs, self.critic_epochs)
        carry = (state.params, state.opt_state)
        measured = {}
        if measure is None:
            carry, aux = epochs(carry, keys[:both], both_parts)
            parts = [aux]
        else:  # the first minibatch step, outside the loops, takes its gradient from the probe

            def probed(params, batch):
                grads, aux, measured["activity"] = measure("actor_critic", lambda p: self.loss(p, batch),
                                                           params)
                return grads, aux

            first = shuffled(keys[0])
            carry, aux = minibatch_step(carry, jax.tree.map(lambda x: x[0], first), both_parts, probed)
            carry, rest = minibatches(carry, jax.tree.map(lambda x: x[1:], first), both_parts)
            parts = [jax.tree.map(lambda x: x[None], aux), rest]
            if both > 1:
                carry, later = epochs(carry, keys[1:both], both_parts)
                parts.append(later)
        if self.decoupled:  # the network with more epochs goes on alone
            longer = "actor" if c.update_epochs > self.critic_epochs else "critic"
            carry, more = epochs(carry, keys[both:], (longer,))
            parts.append(more)
        metrics = jax.tree.map(lambda *xs: jnp.concatenate([x.reshape(-1) for x in xs]).mean(), *parts)
        return AgentState(*carry, state.step + 1), metrics | measured.get("activity", {})

    def only(self, part: str, tree: Any) -> Any:
        """``tree`` (shaped like the parameters) with the other network's leaves zeroed: top-level
        modules ``critic_*`` are the critic, everything else (``actor_*``, the Gaussian's ``log_std``) the
        actor."""
        return {k: jax.tree.map(jnp.zeros_like, v) if k.startswith("critic") != (part == "critic") else v
                for k, v in tree.items()}
