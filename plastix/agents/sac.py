"""Soft actor-critic (Haarnoja et al. 2018, the version with a learned temperature) on continuous
actions in ``[-1, 1]``: twin critics with the minimum in the target, Polyak-averaged target critics,
a tanh-squashed Gaussian actor, temperature tuned towards the target entropy ``-|A|``.

Every iteration steps each env once and stores the steps in the replay buffer held in the agent's
state (`plastix.replay`); from ``learning_starts`` transitions on, updates run at the update-to-data
ratio ``utd`` (gradient steps per env step): each gradient step updates the critics, then the actor and
the temperature on the updated critics, then moves the targets by ``tau`` (SB3 / sbx order). Actions are
uniformly random until learning starts.

Actor and critic are separate networks (``sac.actor.*`` / ``sac.critic.*``, each a full `NetConfig`,
so widths, depths, residual torsos and experts are set apart). ``shared_encoder``: one pixel encoder,
trained by the critic loss, feeds both critics, and the actor reads its features through a stop-gradient
(SAC-AE / DrQ / Dopamine's CALE layout).

Multi-task envs (`EnvSpec.num_tasks`: observations end with a task one-hot, Meta-World's MT sets) make it
the multi-task SAC baseline (McLean et al. 2025): both networks read the one-hot and hand the task id to
task-routed experts (``moe.kind task``); replay batches hold the same number of samples of every env, so
of every task, and the losses are averages over tasks; ``task_temperature`` learns one temperature per
task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from plastix import replay as replay_lib
from plastix.agents.api import PlasticNet, Transitions, periodic_schedule, store_and_update, unrolled
from plastix.envs.api import EnvSpec, task_ids
from plastix.fields import Field
from plastix.nets import neurons
from plastix.nets.build import NetConfig, SACActor, SACCritic
from plastix.nets.build import check as check_net
from plastix.nets.heads import sample_tanh_gaussian
from plastix.nets.moe import COLLECTIONS, MOE_FIELDS, collected


def _mlp(width: int = 256, depth: int = 2) -> NetConfig:
    return NetConfig(hidden=(width,) * depth, activation="relu")


@dataclass(frozen=True)
class SACConfig:
    """SAC hyper-parameters; defaults are SB3 / sbx's MuJoCo settings with CleanRL's 5k random steps."""

    num_envs: int = 1
    """Parallel environments per seed; one iteration steps each once."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (per seed)."""
    learning_starts: int = 5_000
    """Transitions of uniformly random actions before the first update."""
    batch_size: int = 256
    """Transitions per gradient step."""
    utd: float = 1.0
    """Update-to-data ratio: gradient steps per env step (0.25: one step every 4 iterations with one env)."""
    gamma: float = 0.99
    """Discount."""
    tau: float = 0.005
    """Polyak step of the target critics after each gradient step."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-4
    """Adam learning rate of the critics (and a shared encoder)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of the log-temperature."""
    adam_eps: float = 1e-8
    """Adam epsilon (all three optimisers)."""
    max_grad_norm: float = 0.0
    """Clip the actor's and the critics' gradients to this global norm (MT-SAC: 1.0); 0: no clipping."""
    init_alpha: float = 1.0
    """Initial temperature."""
    autotune: bool = True
    """Learn the temperature; False keeps init_alpha."""
    target_entropy_scale: float = 1.0
    """Target entropy = -target_entropy_scale x |A|."""
    task_temperature: bool = False
    """Multi-task envs: one learned temperature per task (the task read from the observation's one-hot)."""
    reward_scale: float = 1.0
    """Rewards are multiplied by this in the critic target (not in logged returns)."""
    num_qs: int = 2
    """Critics; the target uses their minimum."""
    shared_encoder: bool = False
    """Critics share one pixel encoder (critic.encoder.*); the actor reads its features, stop-gradient."""
    actor: NetConfig = field(default_factory=_mlp)
    """The actor's network (encoder unused with shared_encoder)."""
    critic: NetConfig = field(default_factory=_mlp)
    """The critics' network (each critic its own dense stack; the encoder is shared by them)."""


@struct.dataclass
class SACState:
    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    log_alpha: jax.Array
    actor_opt: Any
    critic_opt: Any
    alpha_opt: Any
    replay: replay_lib.ReplayState
    steps: jax.Array  # iterations done


def polyak(target: Any, online: Any, tau: float) -> Any:
    """``(1 - tau) * target + tau * online`` leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)


def tanh_gaussian_log_prob(mean: jax.Array, log_std: jax.Array, action: jax.Array) -> jax.Array:
    """Log-density of ``action = tanh(u)``, ``u ~ N(mean, exp(log_std))``, summed over dimensions."""
    action = jnp.clip(action, -1 + 1e-6, 1 - 1e-6)
    u = jnp.arctanh(action)
    z = (u - mean) * jnp.exp(-log_std)
    log_n = -0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)
    return (log_n - 2 * (jnp.log(2.0) - u - jax.nn.softplus(-2 * u))).sum(-1)


class SAC:
    """SAC on ``Box(-1, 1)`` actions; all methods are pure and jit-able."""

    name = "sac"
    config_class = SACConfig
    action_kinds = ("continuous",)
    fields = (
        Field("loss/total", "loss", "`loss/critic + loss/actor`; a NaN or inf stops the run"),
        Field("loss/critic", "loss", "`0.5 sum_j mean (Q_j - y)^2` (+ the critic experts' auxiliary losses)"),
        Field("loss/actor", "loss", "`mean(alpha log pi - min_j Q_j)` (+ the actor experts' auxiliary "
              "losses)"),
        Field("loss/critic_moe_aux", "loss", "the critic's Top-k auxiliary losses (critic experts)"),
        Field("loss/actor_moe_aux", "loss", "the actor's Top-k auxiliary losses (actor experts)"),
        Field("q/mean", "return", "mean online Q of the replayed actions"),
        Field("q/target", "return", "mean soft target y"),
        Field("entropy", "nats", "policy entropy estimate `-mean log pi` (tanh-corrected)"),
        Field("alpha", "temperature", "entropy temperature after the update (mean over tasks)"),
        Field("grad_norm/critic", "L2 norm", "global gradient norm of the critics before clipping"),
        Field("grad_norm/actor", "L2 norm", "global gradient norm of the actor before clipping"),
        *MOE_FIELDS,
    )
    final_obs = "done"  # every stored transition's next observation is real

    def __init__(self, spec: EnvSpec, config: SACConfig, num_iterations: int, net: NetConfig | None = None):
        self.spec = spec
        self.config = c = config
        self.num_envs = c.num_envs
        self.steps_per_iteration = 1
        self.num_iterations = max(1, num_iterations)
        self.action_dim = int(spec.action_space.shape[0])
        actor_cfg = c.actor
        if c.shared_encoder:  # the actor reads encoder features: no encoder of its own
            actor_cfg = NetConfig(**{**actor_cfg.__dict__, "encoder": NetConfig().encoder,
                                     "bottleneck": "flatten"})
        self.actor = SACActor(actor_cfg, self.action_dim)
        self.critic = SACCritic(c.critic, c.num_qs)
        self.replay = _replay(c, spec)
        self.gradient_steps, self.update_period = _ratio(c)
        self.warmup = max(-(-c.learning_starts // c.num_envs), self.replay.min_rows)  # iterations
        self.target_entropy = -c.target_entropy_scale * self.action_dim
        self.num_tasks = spec.num_tasks
        clip = [optax.clip_by_global_norm(c.max_grad_norm)] if c.max_grad_norm > 0 else []
        adam = lambda lr, clip=(): optax.flatten(optax.chain(*clip, optax.adam(lr, eps=c.adam_eps)))  # noqa: E731
        self.actor_tx, self.critic_tx = adam(c.actor_lr, clip), adam(c.critic_lr, clip)
        self.alpha_tx = adam(c.alpha_lr)

    # ------------------------------------------------------------------ contract
    @staticmethod
    def env_steps(config: SACConfig) -> int:
        return config.num_envs

    @staticmethod
    def check(config: SACConfig, spec: EnvSpec, total_steps: int, prefix: str = "sac.") -> None:
        c = config
        for n in ("num_envs", "buffer_size", "batch_size", "utd", "actor_lr", "critic_lr", "alpha_lr",
                  "adam_eps", "init_alpha", "reward_scale", "num_qs"):
            if getattr(c, n) <= 0:
                raise ValueError(f"{prefix}{n}: must be positive, got {getattr(c, n)!r}")
        if c.max_grad_norm < 0:
            raise ValueError(f"{prefix}max_grad_norm: must be >= 0 (0: no clipping), got {c.max_grad_norm!r}")
        if c.task_temperature and not spec.num_tasks:
            sets = " (Meta-World's ML sets hide the task: use an MT set)" \
                if spec.env_id.startswith("Meta-World/") else ""
            raise ValueError(f"{prefix}task_temperature: needs task ids in the observation (a multi-task env "
                             f"such as Meta-World/MT10); {spec.env_id} has none{sets}")
        if spec.num_tasks and c.batch_size % c.num_envs:
            raise ValueError(f"{prefix}batch_size: a multi-task batch holds the same number of samples of "
                             f"each of the {c.num_envs} envs; {c.batch_size} is not a multiple of num_envs")
        _ratio(c, prefix)
        if c.buffer_size < c.batch_size:
            raise ValueError(f"{prefix}buffer_size: {c.buffer_size} is smaller than a batch "
                             f"(batch_size {c.batch_size})")
        if not 0 <= c.learning_starts < total_steps:
            raise ValueError(f"{prefix}learning_starts: {c.learning_starts} random transitions, but the "
                             f"budget is total_steps {total_steps}: nothing would be learned")
        if c.learning_starts > c.buffer_size:
            raise ValueError(f"{prefix}learning_starts: {c.learning_starts} exceeds the buffer "
                             f"(buffer_size {c.buffer_size})")
        for n in ("gamma", "tau"):
            if not 0.0 <= getattr(c, n) <= 1.0:
                raise ValueError(f"{prefix}{n}: must lie in [0, 1], got {getattr(c, n)}")
        check_net(c.actor, f"{prefix}actor.")
        check_net(c.critic, f"{prefix}critic.")
        for side, cfg in (("actor", c.actor), ("critic", c.critic)):
            if cfg.shared != "none":
                raise ValueError(f"{prefix}{side}.shared: SAC's actor and critic are separate networks; "
                                 f"share a pixel encoder with {prefix}shared_encoder")
            if cfg.moe.kind != "none" and cfg.moe.position != "middle":
                raise ValueError(f"{prefix}{side}.moe.position: SAC takes experts in the middle position")
        if c.shared_encoder and c.critic.encoder.kind == "none":
            raise ValueError(f"{prefix}shared_encoder: needs a pixel encoder in {prefix}critic.encoder.kind "
                             f"(nature or impala)")
        replay_lib.check(_replay(c, spec), prefix)

    def init(self, key: jax.Array) -> SACState:
        k_actor, k_critic = jax.random.split(key)
        obs, action = self._example()
        critic_params = self.critic.init(k_critic, obs, action, self.task_of(obs))["params"]
        actor_in = self.critic.apply({"params": critic_params}, obs, method="encode") \
            if self.config.shared_encoder else obs
        actor_params = self.actor.init(k_actor, actor_in, self.task_of(obs))["params"]
        shape = (self.num_tasks,) if self.config.task_temperature else ()
        log_alpha = jnp.full(shape, jnp.log(self.config.init_alpha), jnp.float32)
        return SACState(actor_params, critic_params, critic_params, log_alpha,
                        self.actor_tx.init(actor_params), self.critic_tx.init(critic_params),
                        self.alpha_tx.init(log_alpha), self.replay.init(obs[0], action[0]),
                        jnp.zeros((), jnp.int32))

    def act(self, state: SACState, obs: jax.Array, key: jax.Array, train: bool = True):
        """A policy sample while training (uniform before learning starts), ``tanh(mean)`` in evaluation."""
        mean, log_std = self.policy(state.actor_params, state.critic_params, obs)
        if not train:
            return jnp.tanh(mean), {}
        k_pi, k_rand = jax.random.split(key)
        action, _ = sample_tanh_gaussian(k_pi, mean, log_std)
        random = jax.random.uniform(k_rand, action.shape, minval=-1.0, maxval=1.0)
        return jnp.where(state.steps < self.warmup, random, action), {}

    def schedule(self, iteration: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Updates run at iterations ``i`` with ``i + 1 >= warmup`` and ``(i + 1) % update_period == 0``."""
        return periodic_schedule(iteration, self.warmup, self.update_period)

    def plastic_nets(self) -> dict[str, PlasticNet]:
        obs, action = self._example()
        actor_in = jnp.zeros((1, self.critic_features), jnp.float32) if self.config.shared_encoder else obs
        key = jax.random.PRNGKey(0)
        actor_loss = lambda state, params, batch: self.actor_loss(  # noqa: E731
            params, state.critic_params, state.log_alpha, batch, key)
        critic_loss = lambda state, params, batch: self.critic_loss(  # noqa: E731
            params, state.target_critic_params, state.actor_params, state.log_alpha, batch, key)
        task = self.task_of(obs)
        return {"actor": PlasticNet(self.actor, actor_loss, (actor_in, task), "actor_params", "actor_opt"),
                "critic": PlasticNet(self.critic, critic_loss, (obs, action, task), "critic_params",
                                     "critic_opt", targets=("target_critic_params",))}

    def probe_batch(self, state: SACState, transitions: Transitions, last_obs: Any, key: jax.Array,
                    size: int) -> dict:
        return self.replay.sample(state.replay, key, size)[0]

    # ------------------------------------------------------------------ networks
    def _example(self) -> tuple[jax.Array, jax.Array]:
        space = self.spec.observation_space
        return (jnp.zeros((1,) + tuple(space.shape), space.dtype),
                jnp.zeros((1, self.action_dim), jnp.float32))

    @property
    def critic_features(self) -> int:
        shapes = jax.eval_shape(lambda: self.critic.init(jax.random.PRNGKey(0), *self._example()))
        return jax.eval_shape(lambda p: self.critic.apply(p, self._example()[0], method="encode"),
                              shapes).shape[-1]

    def task_of(self, obs: jax.Array) -> jax.Array | None:
        """Task ids from the observations' trailing one-hot (multi-task envs), else None."""
        return task_ids(obs, self.spec)

    def alpha(self, log_alpha: jax.Array, task: jax.Array | None) -> jax.Array:
        """The temperature of each sample: its task's with ``task_temperature``, else the one."""
        return jnp.exp(log_alpha[task] if self.config.task_temperature else log_alpha)

    def actor_input(self, critic_params: Any, obs: jax.Array) -> jax.Array:
        """What the actor reads: ``obs``, or the shared encoder's features (stop-gradient)."""
        if not self.config.shared_encoder:
            return obs
        return jax.lax.stop_gradient(self.critic.apply({"params": critic_params}, obs, method="encode"))

    def policy(self, actor_params: Any, critic_params: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(mean, log_std)`` of the pre-tanh Gaussian at ``obs``. Each loss runs only the network it
        trains through `neurons.apply`, so a probe of that loss sees that network's neurons alone."""
        return self.actor.apply({"params": actor_params}, self.actor_input(critic_params, obs),
                                self.task_of(obs))

    # ------------------------------------------------------------------ losses
    def critic_loss(self, params: Any, target_params: Any, actor_params: Any, log_alpha: jax.Array,
                    batch: dict, key: jax.Array):
        """``0.5 * sum_j mean_b (Q_j(s, a) - y)^2`` with the soft target ``y = r * scale + discount *
        (min_j Q'_j(s', a') - alpha log pi(a'|s'))``, ``a' ~ pi(s')`` (SB3 / sbx's form)."""
        c = self.config
        task = self.task_of(batch["obs"])
        mean, log_std = self.policy(actor_params, params, batch["next_obs"])
        next_action, next_logp = sample_tanh_gaussian(key, mean, log_std)
        q_next = self.critic.apply({"params": target_params}, batch["next_obs"], next_action, task).min(0)
        alpha = self.alpha(log_alpha, task)
        target = jax.lax.stop_gradient(
            batch["return"] * c.reward_scale + batch["discount"] * (q_next - alpha * next_logp))
        q, extra = neurons.apply(self.critic, params, batch["obs"], batch["action"], task,
                                 mutable=COLLECTIONS)
        per_q = ((q - target) ** 2 * batch["weight"]).mean(-1)
        moe_aux, routing = collected(extra, "moe/critic")
        total = 0.5 * per_q.sum() + moe_aux
        return total, {"loss/critic": total, "q/mean": q.mean(), "q/target": target.mean(), **routing,
                       **({"loss/critic_moe_aux": moe_aux} if self.config.critic.moe.kind != "none" else {})}

    def actor_loss(self, params: Any, critic_params: Any, log_alpha: jax.Array, batch: dict, key: jax.Array):
        """``mean_b (alpha log pi(a|s) - min_j Q_j(s, a))``, ``a ~ pi(s)`` reparameterised."""
        task = self.task_of(batch["obs"])
        actor_in = self.actor_input(critic_params, batch["obs"])
        (mean, log_std), extra = neurons.apply(self.actor, params, actor_in, task, mutable=COLLECTIONS)
        action, logp = sample_tanh_gaussian(key, mean, log_std)
        q = self.critic.apply({"params": critic_params}, batch["obs"], action, task).min(0)
        alpha = jax.lax.stop_gradient(self.alpha(log_alpha, task))
        moe_aux, routing = collected(extra, "moe/actor")
        total = (alpha * logp - q).mean() + moe_aux
        return total, {"loss/actor": total, "entropy": -logp.mean(), "logp": logp, **routing,
                       **({"loss/actor_moe_aux": moe_aux} if self.config.actor.moe.kind != "none" else {})}

    def alpha_loss(self, log_alpha: jax.Array, logp: jax.Array, task: jax.Array | None = None) -> jax.Array:
        """``-mean(log_alpha * (log pi + target_entropy))`` (SB3's form), ``log pi`` held fixed; with
        ``task_temperature`` each sample's term uses its task's log-temperature."""
        if self.config.task_temperature:
            log_alpha = log_alpha[task]
        return -(log_alpha * jax.lax.stop_gradient(logp + self.target_entropy)).mean()

    # ------------------------------------------------------------------ learning
    def gradient_step(self, state: SACState, batch: dict, key: jax.Array) -> tuple[SACState, dict]:
        """Critics, then actor and temperature on the updated critics, then the targets."""
        c = self.config
        k_critic, k_actor = jax.random.split(key)
        grads, info = jax.grad(self.critic_loss, has_aux=True)(
            state.critic_params, state.target_critic_params, state.actor_params, state.log_alpha, batch,
            k_critic)
        updates, critic_opt = self.critic_tx.update(grads, state.critic_opt, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, updates)
        info["grad_norm/critic"] = optax.global_norm(grads)

        grads, actor_info = jax.grad(self.actor_loss, has_aux=True)(
            state.actor_params, critic_params, state.log_alpha, batch, k_actor)
        updates, actor_opt = self.actor_tx.update(grads, state.actor_opt, state.actor_params)
        actor_params = optax.apply_updates(state.actor_params, updates)
        info |= {k: v for k, v in actor_info.items() if k != "logp"}
        info["grad_norm/actor"] = optax.global_norm(grads)

        log_alpha, alpha_opt = state.log_alpha, state.alpha_opt
        if c.autotune:
            alpha_grad = jax.grad(self.alpha_loss)(log_alpha, actor_info["logp"], self.task_of(batch["obs"]))
            updates, alpha_opt = self.alpha_tx.update(alpha_grad, alpha_opt, log_alpha)
            log_alpha = optax.apply_updates(log_alpha, updates)
        info["alpha"] = jnp.exp(log_alpha).mean()
        info["loss/total"] = info["loss/critic"] + info["loss/actor"]
        state = state.replace(actor_params=actor_params, critic_params=critic_params,
                              target_critic_params=polyak(state.target_critic_params, critic_params, c.tau),
                              log_alpha=log_alpha, actor_opt=actor_opt, critic_opt=critic_opt,
                              alpha_opt=alpha_opt)
        return state, info

    def _update(self, state: SACState, key: jax.Array) -> tuple[SACState, dict]:
        """``gradient_steps`` steps on replay batches. The state is carried without its replay (read, not
        carried), so XLA never copies the buffer."""
        replay = state.replay

        def step(learner, k):
            k_sample, k_step = jax.random.split(k)
            batch, _ = self.replay.sample(replay, k_sample, self.config.batch_size)
            return self.gradient_step(learner, batch, k_step)

        learner, info = unrolled(step, state.replace(replay=None), jax.random.split(key, self.gradient_steps))
        return learner.replace(replay=replay), jax.tree.map(jnp.mean, info)

    def learn(self, state: SACState, transitions: Transitions, last_obs: Any, key: jax.Array,
              iteration: jax.Array, update: bool | None = None) -> tuple[SACState, dict]:
        """Store the iteration's steps; update when `schedule` says so (or ``update``, when the caller
        knows)."""
        state, learner, metrics = store_and_update(
            self.replay, state, transitions, update, self.schedule(iteration)[0],
            lambda s: (lambda new, m: (new.replace(replay=None), m))(*self._update(s, key)),
            lambda s: s.replace(replay=None))
        return learner.replace(replay=state.replay, steps=state.steps + 1), metrics


def _ratio(c: SACConfig, prefix: str = "sac.") -> tuple[int, int]:
    """``(gradient_steps, update_period)`` in iterations for ``utd`` gradient steps per env step."""
    per_iteration = c.utd * c.num_envs
    if per_iteration >= 1:
        steps, period = round(per_iteration), 1
    else:
        steps, period = 1, round(1 / per_iteration) if per_iteration > 0 else 0
    if period < 1 or abs(steps / period - per_iteration) > 1e-9:
        raise ValueError(f"{prefix}utd: {c.utd} gradient steps per env step with num_envs {c.num_envs} is "
                         f"neither a whole number of steps per iteration nor one step every whole number "
                         f"of iterations")
    return steps, period


def _replay(c: SACConfig, spec: EnvSpec) -> replay_lib.Replay:
    """Uniform one-step replay; an env's stacked frames (Atari) are stored once each; stratified over the
    envs (so over the tasks) in multi-task envs."""
    frames, padding = replay_lib.frame_settings(0, "env", spec)
    return replay_lib.Replay(capacity=c.buffer_size, num_envs=c.num_envs, n_step=1, gamma=c.gamma,
                             frame_stack=frames, padding=padding, stratified=spec.num_tasks > 0)
