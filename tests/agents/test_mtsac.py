"""Multi-task SAC against hand computations: per-task temperatures (loss gradient and first Adam step on a
hand-made batch), task ids read from the one-hot and handed to task-routed experts, batches stratified
over the envs (so over the tasks), and its bad-input errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.agents.sac import SAC, SACConfig
from plastix.envs.api import Box, EnvSpec
from plastix.nets.build import MoEConfig, NetConfig
from plastix.nets.heads import sample_tanh_gaussian
from plastix.replay import Replay

TASKS = 3
SPEC = EnvSpec("Meta-World/custom-mt", Box(-np.inf, np.inf, (2 + TASKS,)), Box(-1.0, 1.0, (2,)), 500, False,
               num_tasks=TASKS, task_names=("a", "b", "c"))
SMALL = NetConfig(hidden=(8,), activation="relu")


def _agent(**kw):
    cfg = dict(num_envs=TASKS, buffer_size=60, batch_size=6, actor=SMALL, critic=SMALL, task_temperature=True)
    return SAC(SPEC, SACConfig(**{**cfg, **kw}), 100)


def _batch(tasks):
    rng = np.random.default_rng(0)
    n = len(tasks)
    obs = np.concatenate([rng.normal(size=(n, 2)), np.eye(TASKS)[tasks]], 1)
    return {"obs": jnp.asarray(obs, jnp.float32), "next_obs": jnp.asarray(obs, jnp.float32),
            "action": jnp.asarray(rng.uniform(-0.9, 0.9, size=(n, 2)), jnp.float32),
            "return": jnp.ones(n), "discount": jnp.full(n, 0.99), "weight": jnp.ones(n)}


def test_per_task_temperature_gradient_and_first_adam_step_by_hand():
    agent = _agent(alpha_lr=0.01, init_alpha=0.5)
    state = agent.init(jax.random.PRNGKey(0))
    assert state.log_alpha.shape == (TASKS,)
    np.testing.assert_allclose(state.log_alpha, np.log(0.5), rtol=1e-6)
    tasks = np.array([0, 0, 1, 1, 0, 1])  # task 2 absent from this batch
    batch = _batch(tasks)
    logp = jnp.asarray([-1.0, 0.5, -3.0, -2.5, 1.0, -4.0])
    grad = jax.jit(jax.grad(agent.alpha_loss))(state.log_alpha, logp, agent.task_of(batch["obs"]))
    # d/d log_alpha_t of -(1/B) sum_i log_alpha_{task_i} (logp_i + H), H = -|A| = -2
    expected = [-(np.asarray(logp)[tasks == t] - 2.0).sum() / len(tasks) for t in range(TASKS)]
    np.testing.assert_allclose(grad, expected, rtol=1e-6)
    assert grad[2] == 0.0
    # through a whole gradient step: each task's temperature moves by lr against its own gradient's sign
    # (Adam's first step), the absent task's stays
    new, info = jax.jit(agent.gradient_step)(state, batch, jax.random.PRNGKey(1))
    _, actor_info = jax.jit(agent.actor_loss)(new.actor_params, new.critic_params, state.log_alpha, batch,
                                     jax.random.split(jax.random.PRNGKey(1))[1])
    g = jax.grad(agent.alpha_loss)(state.log_alpha, actor_info["logp"], agent.task_of(batch["obs"]))
    step = new.log_alpha - state.log_alpha
    np.testing.assert_allclose(step[:2], -0.01 * np.sign(g[:2]), atol=1e-5)
    assert step[2] == 0.0
    np.testing.assert_allclose(info["alpha"], np.exp(new.log_alpha).mean(), rtol=1e-6)


def test_losses_use_each_samples_task_temperature():
    agent = _agent()
    state = agent.init(jax.random.PRNGKey(2))
    log_alpha = jnp.log(jnp.asarray([0.1, 1.0, 3.0]))
    tasks = np.array([0, 1, 2, 2, 1, 0])
    batch, key = _batch(tasks), jax.random.PRNGKey(3)
    loss, info = agent.actor_loss(state.actor_params, state.critic_params, log_alpha, batch, key)
    mean, log_std = agent.actor.apply({"params": state.actor_params}, batch["obs"])
    a, logp = sample_tanh_gaussian(key, mean, log_std)
    q = np.asarray(agent.critic.apply({"params": state.critic_params}, batch["obs"], a)).min(0)
    alpha = np.array([0.1, 1.0, 3.0])[tasks]
    np.testing.assert_allclose(loss, (alpha * np.asarray(logp) - q).mean(), rtol=1e-5)


def test_task_ids_reach_task_routed_experts():
    moe = NetConfig(hidden=(8, 8), activation="relu", moe=MoEConfig(kind="task", experts=TASKS))
    agent = _agent(actor=moe, critic=moe)
    state = agent.init(jax.random.PRNGKey(4))
    obs = _batch(np.array([0, 1, 2]))["obs"]
    task = agent.task_of(obs)
    np.testing.assert_array_equal(task, [0, 1, 2])
    mean, _ = agent.policy(state.actor_params, state.critic_params, obs)
    # the same observation under another task id goes through another expert
    for t in range(TASKS):
        other = agent.actor.apply({"params": state.actor_params}, obs, jnp.full(3, t))[0]
        np.testing.assert_array_equal(np.asarray(other[t]), np.asarray(mean[t]))
        assert not np.allclose(other[(t + 1) % 3], mean[(t + 1) % 3])
    with pytest.raises(ValueError, match="task ids"):
        agent.actor.apply({"params": state.actor_params}, obs)


def test_multi_task_batches_hold_every_env_equally():
    replay = Replay(capacity=60, num_envs=TASKS, stratified=True)
    state = replay.init(jnp.zeros(5), jnp.zeros(2))
    for t in range(10):
        obs = jnp.asarray(np.concatenate([np.full((TASKS, 2), t), np.eye(TASKS)], 1), jnp.float32)
        state = replay.add(state, obs, jnp.zeros((TASKS, 2)), jnp.zeros(TASKS), jnp.zeros(TASKS, bool),
                           jnp.zeros(TASKS, bool), obs)
    batch, (rows, envs) = replay.sample(state, jax.random.PRNGKey(0), 12)
    np.testing.assert_array_equal(np.bincount(np.asarray(envs), minlength=TASKS), [4, 4, 4])
    np.testing.assert_array_equal(np.asarray(batch["obs"][:, 2:]).argmax(1), np.asarray(envs))
    assert _agent().replay.stratified


def test_bad_input():
    with pytest.raises(ValueError, match="sac.batch_size: .*multiple of num_envs"):
        SAC.check(SACConfig(num_envs=3, batch_size=10, learning_starts=10), SPEC, 1000)
    single = EnvSpec("Meta-World/ML10", Box(-np.inf, np.inf, (39,)), Box(-1.0, 1.0, (4,)), 500, False)
    with pytest.raises(ValueError, match="sac.task_temperature: .*ML sets hide the task"):
        SAC.check(SACConfig(task_temperature=True, learning_starts=10), single, 1000)
    with pytest.raises(ValueError, match="sac.max_grad_norm"):
        SAC.check(SACConfig(max_grad_norm=-1.0, learning_starts=10), SPEC, 1000)
