"""The DQN family (Mnih et al. 2015 and its Rainbow components), with Dopamine's defaults, fully on
device: every iteration steps each env once, stores the steps in the replay buffer that lives in the
agent's state, and every ``update_period`` iterations samples and takes ``gradient_steps`` steps.

Components, each a field of `DQNConfig`: Huber or MSE loss; target network copied every
``target_update_period`` iterations; linearly decaying epsilon (Dopamine's schedule); double Q (van
Hasselt et al. 2016); dueling heads (Wang et al. 2016); n-step returns (cut at terminations,
bootstrapped at truncations, `plastix.replay`); C51 (Bellemare et al. 2017) with its categorical
projection; NoisyNet (Fortunato et al. 2018); prioritised replay (Schaul et al. 2016). The recipes
``der_*`` (data-efficient Rainbow, van Hasselt et al. 2019) and ``drq_eps_*`` (DrQ(eps): DQN with random
shifts, Kostrikov et al. 2021 / Agarwal et al. 2021) are settings of these fields.

Counting: an *iteration* steps each of the ``num_envs`` envs of a seed once (with ``num_envs=1``, one
Dopamine agent step). Periods (update, target, epsilon decay) count iterations; ``min_replay`` and
``buffer_size`` count transitions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from plastix import replay as replay_lib
from plastix.agents.api import PlasticNet, Transitions, periodic_schedule, store_and_update, unrolled
from plastix.envs.api import EnvSpec, task_ids
from plastix.fields import Field, Reduce
from plastix.nets import neurons
from plastix.nets.build import NetConfig, QNetwork
from plastix.nets.moe import COLLECTIONS, MOE_FIELDS, collected

LOSS_KINDS = ("huber", "mse")
AUGMENTATIONS = ("none", "shift")


@dataclass(frozen=True)
class DQNConfig:
    """DQN-family hyper-parameters; defaults are Dopamine's DQN (Atari) settings."""

    num_envs: int = 1
    """Parallel environments per seed; one iteration steps each once."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (per seed)."""
    min_replay: int = 20_000
    """Transitions stored before learning starts; acting is uniformly random until then."""
    batch_size: int = 32
    """Transitions per gradient step."""
    update_period: int = 4
    """Iterations between updates."""
    gradient_steps: int = 1
    """Gradient steps per update."""
    target_update_period: int = 8_000
    """Iterations between copies of the online network into the target network."""
    gamma: float = 0.99
    """Discount."""
    n_step: int = 1
    """Steps summed in the return before bootstrapping."""
    lr: float = 6.25e-5
    """Learning rate."""
    optimizer: str = "adam"
    """adam, or rmsprop (PyTorch's RMSprop: eps outside the square root; Young & Tian's MinAtar DQN uses
    it centered, decay 0.95, eps 0.01)."""
    adam_eps: float = 1.5e-4
    """Adam epsilon."""
    rms_decay: float = 0.95
    """RMSprop: decay of the squared-gradient average."""
    rms_eps: float = 0.01
    """RMSprop epsilon, added to the root."""
    rms_centered: bool = True
    """RMSprop: divide by the root of the gradient's variance rather than of its second moment."""
    max_grad_norm: float = 0.0
    """Global gradient-norm clip; 0: none (Dopamine)."""
    loss: str = "huber"
    """TD loss of scalar heads: huber (delta 1) or mse."""
    eps_train: float = 0.01
    """Final exploration epsilon."""
    eps_eval: float = 0.001
    """Epsilon in evaluation."""
    eps_decay_period: int = 250_000
    """Iterations over which epsilon decays from 1 to eps_train, after min_replay."""
    double: bool = False
    """Double Q: the online network picks the bootstrap action."""
    dueling: bool = False
    """Dueling head: V + A - mean(A)."""
    distributional: bool = False
    """C51: a categorical return distribution on a fixed support."""
    atoms: int = 51
    """C51 atoms."""
    v_max: float = 10.0
    """C51 support [-v_max, v_max]."""
    noisy: bool = False
    """NoisyNet head layers (factorised Gaussian noise; noise-free in evaluation)."""
    prioritized: bool = False
    """Prioritised replay."""
    alpha: float = 0.5
    """Priority exponent."""
    beta: float = 0.4
    """Importance-weight exponent (at the start when beta_anneal)."""
    beta_anneal: bool = True
    """Anneal beta linearly to 1 over training."""
    augment: str = "none"
    """Observation augmentation at sampling: none, or shift (DrQ's random shift of image observations)."""
    shift_pad: int = 4
    """Random shift: pixels of edge padding before the random crop."""
    frame_stack: int = 0
    """> 1: observations are [..., k] stacks of frames, stored once each in replay; 0: the env's own
    stacking (Atari: 4); 1: store whole observations."""
    frame_padding: str = "env"
    """How the env pads stacks at an episode start: repeat (the first frame), zero, or env (its own)."""


OPTIMIZERS = ("adam", "rmsprop")


def optimizer(c: DQNConfig) -> optax.GradientTransformation:
    """The configured optimiser, after the gradient-norm clip when there is one."""
    if c.optimizer == "rmsprop":
        opt = optax.rmsprop(c.lr, decay=c.rms_decay, eps=c.rms_eps, eps_in_sqrt=False,
                            centered=c.rms_centered)
    else:
        opt = optax.adam(c.lr, eps=c.adam_eps)
    return optax.chain(optax.clip_by_global_norm(c.max_grad_norm), opt) if c.max_grad_norm > 0 else opt


@struct.dataclass
class DQNState:
    params: Any
    target_params: Any
    opt_state: Any
    replay: replay_lib.ReplayState
    steps: jax.Array  # iterations done


def categorical_projection(support: jax.Array, probs: jax.Array, target_support: jax.Array) -> jax.Array:
    """Project a distribution with ``probs [..., K]`` on atoms ``target_support [..., K]`` onto the
    fixed ``support [K]`` (evenly spaced): each atom's mass goes to its two neighbours in proportion
    to closeness, atoms beyond the ends to the ends (Bellemare et al. 2017, Algorithm 1)."""
    v_min, v_max = support[0], support[-1]
    delta = (v_max - v_min) / (support.shape[0] - 1)
    tz = jnp.clip(target_support, v_min, v_max)
    weight = jnp.clip(1.0 - jnp.abs(tz[..., None, :] - support[:, None]) / delta, 0.0, 1.0)  # [..., K, K]
    return (weight * probs[..., None, :]).sum(-1)


def q_target(ret: jax.Array, discount: jax.Array, q_next_target: jax.Array,
             q_next_online: jax.Array | None = None) -> jax.Array:
    """``ret + discount * Q_target(s', a*)`` with ``a* = argmax Q_target(s')``, or ``argmax
    Q_online(s')`` when given (double Q)."""
    pick = q_next_target if q_next_online is None else q_next_online
    best = jnp.argmax(pick, -1)
    return ret + discount * jnp.take_along_axis(q_next_target, best[:, None], -1)[:, 0]


def c51_target(support: jax.Array, ret: jax.Array, discount: jax.Array, logits_next_target: jax.Array,
               q_pick: jax.Array) -> jax.Array:
    """The projected target distribution ``[B, K]``: the target network's next-state distribution of
    ``argmax q_pick`` (target Q, or online Q for double), shifted by ``ret + discount * z``."""
    best = jnp.argmax(q_pick, -1)
    probs = jax.nn.softmax(jnp.take_along_axis(logits_next_target, best[:, None, None], 1)[:, 0], -1)
    return categorical_projection(support, probs, ret[:, None] + discount[:, None] * support)


def huber(x: jax.Array, delta: float = 1.0) -> jax.Array:
    a = jnp.abs(x)
    return jnp.where(a <= delta, 0.5 * x**2, delta * (a - 0.5 * delta))


def random_shift(key: jax.Array, obs: jax.Array, pad: int) -> jax.Array:
    """DrQ's augmentation: pad ``[B, H, W, C]`` images by replicating edges, crop back at a random
    offset per image."""
    b, h, w = obs.shape[:3]
    padded = jnp.pad(obs, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    offsets = jax.random.randint(key, (b, 2), 0, 2 * pad + 1)
    crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, obs.shape[3]))  # noqa: E731
    return jax.vmap(crop)(padded, offsets)


def linear_epsilon(step: jax.Array, decay_period: int, warmup: int, final: float) -> jax.Array:
    """Dopamine's ``linearly_decaying_epsilon``: 1 until ``warmup``, then linear to ``final`` over
    ``decay_period`` steps."""
    left = decay_period + warmup - step
    return final + jnp.clip((1.0 - final) * left / decay_period, 0.0, 1.0 - final)


class DQN:
    """Value-based agent on discrete actions; all methods are pure and jit-able."""

    name = "dqn"
    config_class = DQNConfig
    action_kinds = ("discrete",)
    final_obs = "done"  # every stored transition's next observation is real
    fields = (
        Field("loss/total", "loss", "mean importance-weighted TD loss (+ the experts' auxiliary losses); "
              "a NaN or inf stops the run"),
        Field("loss/td", "loss", "mean per-sample TD loss (Huber / squared error, or C51 cross-entropy), "
              "before importance weights"),
        Field("loss/moe_aux", "loss", "sum of the Top-k auxiliary losses (with experts)"),
        Field("q/taken", "return", "mean Q-value of the replayed actions"),
        Field("grad_norm", "L2 norm", "global gradient norm before clipping"),
        Field("epsilon", "probability", "exploration epsilon after the chunk's last iteration", Reduce.LAST),
        *MOE_FIELDS,
    )

    def __init__(self, spec: EnvSpec, config: DQNConfig, num_iterations: int, net: NetConfig | None = None):
        self.spec = spec
        self.config = c = config
        self.net = net or NetConfig()
        self.num_envs = c.num_envs
        self.steps_per_iteration = 1
        self.num_iterations = max(1, num_iterations)
        self.num_actions = spec.action_space.n
        self.network = QNetwork(self.net, self.num_actions, dueling=c.dueling,
                                distributional=c.distributional, atoms=c.atoms, v_max=c.v_max, noisy=c.noisy)
        self.replay = _replay(c, spec)
        self.tx = optax.flatten(optimizer(c))
        self.warmup = max(math.ceil(c.min_replay / c.num_envs), self.replay.min_rows)  # iterations
        self.support = jnp.linspace(-c.v_max, c.v_max, c.atoms)

    # ------------------------------------------------------------------ contract
    @staticmethod
    def env_steps(config: DQNConfig) -> int:
        return config.num_envs

    @staticmethod
    def check(config: DQNConfig, spec: EnvSpec, total_steps: int, prefix: str = "dqn.") -> None:
        c = config
        for n in ("num_envs", "buffer_size", "batch_size", "update_period", "gradient_steps",
                  "target_update_period", "lr", "adam_eps", "eps_decay_period"):
            if getattr(c, n) <= 0:
                raise ValueError(f"{prefix}{n}: must be positive, got {getattr(c, n)!r}")
        if c.buffer_size < c.batch_size:
            raise ValueError(f"{prefix}buffer_size: {c.buffer_size} is smaller than a batch "
                             f"(batch_size {c.batch_size})")
        if c.min_replay > c.buffer_size:
            raise ValueError(f"{prefix}min_replay: {c.min_replay} exceeds the buffer (buffer_size "
                             f"{c.buffer_size})")
        if c.min_replay >= total_steps:
            raise ValueError(f"{prefix}min_replay: {c.min_replay} transitions before learning starts, but "
                             f"the budget is total_steps {total_steps}: nothing would be learned")
        if c.n_step < 1:
            raise ValueError(f"{prefix}n_step: must be >= 1, got {c.n_step}")
        if c.distributional and c.atoms < 2:
            raise ValueError(f"{prefix}atoms: C51 needs at least 2 atoms, got {c.atoms}")
        if c.distributional and c.v_max <= 0:
            raise ValueError(f"{prefix}v_max: must be positive, got {c.v_max}")
        for n in ("gamma", "eps_train", "eps_eval", "beta"):
            if not 0.0 <= getattr(c, n) <= 1.0:
                raise ValueError(f"{prefix}{n}: must lie in [0, 1], got {getattr(c, n)}")
        if c.optimizer not in OPTIMIZERS:
            raise ValueError(f"{prefix}optimizer: {c.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if c.optimizer == "rmsprop" and not (0.0 <= c.rms_decay < 1.0 and c.rms_eps > 0):
            raise ValueError(f"{prefix}rms_decay: must lie in [0, 1) with rms_eps > 0, got {c.rms_decay}, "
                             f"{c.rms_eps}")
        if c.loss not in LOSS_KINDS:
            raise ValueError(f"{prefix}loss: {c.loss!r} is not one of {', '.join(LOSS_KINDS)}")
        if c.augment not in AUGMENTATIONS:
            raise ValueError(f"{prefix}augment: {c.augment!r} is not one of {', '.join(AUGMENTATIONS)}")
        shape = tuple(spec.observation_space.shape)
        if c.augment == "shift" and len(shape) != 3:
            raise ValueError(f"{prefix}augment: shift needs image observations [H, W, C], but "
                             f"{spec.env_id} observes {shape}")
        if c.frame_stack < 0:
            raise ValueError(f"{prefix}frame_stack: must be >= 0, got {c.frame_stack}")
        if c.frame_stack > 1 and (not shape or shape[-1] != c.frame_stack):
            raise ValueError(f"{prefix}frame_stack: {c.frame_stack} frames, but the observations {shape} do "
                             f"not end in an axis of {c.frame_stack} frames")
        replay_lib.check(_replay(c, spec), prefix)

    def init(self, key: jax.Array) -> DQNState:
        k_params, k_noise = jax.random.split(key)
        dummy = self._example()
        params = self.network.init({"params": k_params, "noise": k_noise}, dummy, self.task(dummy))["params"]
        action = jnp.zeros((), jnp.int32)
        return DQNState(params, params, self.tx.init(params), self.replay.init(dummy[0], action),
                        jnp.zeros((), jnp.int32))

    def act(self, state: DQNState, obs: jax.Array, key: jax.Array, train: bool = True):
        """Epsilon-greedy on Q (noisy layers draw noise when training); ``aux`` is empty."""
        c = self.config
        k_noise, k_coin, k_rand = jax.random.split(key, 3)
        q = self.q_values(state.params, obs, k_noise, deterministic=not train)
        eps = (linear_epsilon(state.steps, c.eps_decay_period, self.warmup, c.eps_train) if train
               else c.eps_eval)
        explore = jax.random.uniform(k_coin, q.shape[:1]) < eps
        random = jax.random.randint(k_rand, q.shape[:1], 0, self.num_actions)
        return jnp.where(explore, random, jnp.argmax(q, -1)).astype(jnp.int32), {}

    def schedule(self, iteration: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Updates run at iterations ``i`` with ``i + 1 >= warmup`` and ``(i + 1) % update_period == 0``."""
        return periodic_schedule(iteration, self.warmup, self.config.update_period)

    def plastic_nets(self) -> dict[str, PlasticNet]:
        loss = lambda state, params, batch: self.loss(params, state.target_params, batch,  # noqa: E731
                                                      jax.random.PRNGKey(0))
        return {"online": PlasticNet(self.network, loss, (self._example(), self.task(self._example()), True),
                                     targets=("target_params",))}

    def probe_batch(self, state: DQNState, transitions: Transitions, last_obs: Any, key: jax.Array,
                    size: int) -> dict:
        return self.replay.sample(state.replay, key, size, 1.0)[0]

    # ------------------------------------------------------------------ learning
    def _example(self) -> jax.Array:
        return jnp.zeros((1,) + tuple(self.spec.observation_space.shape), self.spec.observation_space.dtype)

    def task(self, obs: jax.Array) -> jax.Array | None:
        """Task ids from the observations (multi-task envs; task-routed experts read them), else None."""
        return task_ids(obs, self.spec)

    def q_values(self, params: Any, obs: jax.Array, key: jax.Array, deterministic: bool = False) -> jax.Array:
        out = neurons.apply(self.network, params, obs, self.task(obs), deterministic=deterministic,
                            rngs={"noise": key})
        return out[0] if self.config.distributional else out

    def loss(self, params: Any, target_params: Any, batch: dict, key: jax.Array):
        """Importance-weighted TD loss on a replay batch; ``aux`` holds the new priorities."""
        c = self.config
        k_online, k_target, k_next = jax.random.split(key, 3)
        out, extra = neurons.apply(self.network, params, batch["obs"], self.task(batch["obs"]),
                                   rngs={"noise": k_online},
                                   mutable=COLLECTIONS)
        target_out = self.network.apply({"params": target_params}, batch["next_obs"],
                                        self.task(batch["next_obs"]), rngs={"noise": k_target})
        rows = jnp.arange(batch["action"].shape[0])
        a = batch["action"]
        online_next = lambda: self.network.apply({"params": params}, batch["next_obs"],  # noqa: E731
                                                 self.task(batch["next_obs"]), rngs={"noise": k_next})
        if c.distributional:
            q_pick = online_next()[0] if c.double else target_out[0]
            target = jax.lax.stop_gradient(
                c51_target(self.support, batch["return"], batch["discount"], target_out[1], q_pick))
            per_sample = -(target * jax.nn.log_softmax(out[1][rows, a], -1)).sum(-1)
            q_taken = out[0][rows, a]
            priority = per_sample
        else:
            target = q_target(batch["return"], batch["discount"], target_out,
                              online_next() if c.double else None)
            q_taken = out[rows, a]
            td = q_taken - jax.lax.stop_gradient(target)
            per_sample = huber(td) if c.loss == "huber" else td**2
            priority = jnp.abs(td)
        moe_aux, routing = collected(extra)
        total = (batch["weight"] * per_sample).mean() + moe_aux
        aux = {"loss/total": total, "loss/td": per_sample.mean(), "q/taken": q_taken.mean(),
               **routing}
        if self.net.moe.kind != "none":
            aux["loss/moe_aux"] = moe_aux
        return total, (aux, jax.lax.stop_gradient(priority))

    def _beta(self, iteration: jax.Array) -> jax.Array:
        c = self.config
        if not c.beta_anneal:
            return jnp.float32(c.beta)
        frac = jnp.clip(iteration / self.num_iterations, 0.0, 1.0)
        return c.beta + (1.0 - c.beta) * frac

    def _update(self, state: DQNState, key: jax.Array, iteration: jax.Array):
        """``gradient_steps`` steps on replay batches: ``((params, opt_state, priority, max_priority),
        metrics)``. Only what the steps change is carried (the replay's data is read, not carried), so
        XLA never copies the buffer."""
        c = self.config
        grad_fn = jax.grad(self.loss, has_aux=True)
        replay = state.replay

        def step(carry, k):
            params, opt_state, priority, max_priority = carry
            buffer = replay.replace(priority=priority, max_priority=max_priority)
            k_sample, k_aug, k_loss = jax.random.split(k, 3)
            batch, where = self.replay.sample(buffer, k_sample, c.batch_size, self._beta(iteration))
            if c.augment == "shift":
                k_obs, k_next = jax.random.split(k_aug)
                batch = {**batch, "obs": random_shift(k_obs, batch["obs"], c.shift_pad),
                         "next_obs": random_shift(k_next, batch["next_obs"], c.shift_pad)}
            grads, (aux, new_priority) = grad_fn(params, state.target_params, batch, k_loss)
            updates, opt_state = self.tx.update(grads, opt_state, params)
            if c.prioritized:
                buffer = self.replay.update_priorities(buffer, where, new_priority)
            aux["grad_norm"] = optax.global_norm(grads)
            params = optax.apply_updates(params, updates)
            return (params, opt_state, buffer.priority, buffer.max_priority), aux

        carry = (state.params, state.opt_state, replay.priority, replay.max_priority)
        carry, aux = unrolled(step, carry, jax.random.split(key, c.gradient_steps))
        return carry, jax.tree.map(jnp.mean, aux)

    def learn(self, state: DQNState, transitions: Transitions, last_obs: Any, key: jax.Array,
              iteration: jax.Array, update: bool | None = None) -> tuple[DQNState, dict]:
        """Store the iteration's steps; update when `schedule` says so (or ``update``, when the caller
        knows); copy the target on its period."""
        c = self.config
        state, (params, opt_state, priority, max_priority), metrics = store_and_update(
            self.replay, state, transitions, update, self.schedule(iteration)[0],
            lambda s: self._update(s, key, iteration),
            lambda s: (s.params, s.opt_state, s.replay.priority, s.replay.max_priority))
        state = state.replace(params=params, opt_state=opt_state,
                              replay=state.replay.replace(priority=priority, max_priority=max_priority))
        n = iteration + 1
        sync = (n >= self.warmup) & (n % c.target_update_period == 0)
        target = jax.lax.cond(sync, lambda: state.params, lambda: state.target_params)
        metrics["epsilon"] = linear_epsilon(state.steps, c.eps_decay_period, self.warmup, c.eps_train)
        return state.replace(target_params=target, steps=state.steps + 1), metrics


def _replay(c: DQNConfig, spec: EnvSpec) -> replay_lib.Replay:
    frames, padding = replay_lib.frame_settings(c.frame_stack, c.frame_padding, spec)
    return replay_lib.Replay(capacity=c.buffer_size, num_envs=c.num_envs, n_step=c.n_step, gamma=c.gamma,
                             prioritized=c.prioritized, alpha=c.alpha, frame_stack=frames, padding=padding)
