"""Several gridworlds in one batch (TaskMix/MiniGrid-v0): each task's transitions are its single-task
env's for the same key, task ids reach task-routed experts, the continual schedule switches exactly
every N steps and resumes where it was, and bad mixes fail before anything is built."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.agents.ppo import PPO, PPOConfig
from plastix.envs import make
from plastix.envs.api import task_ids
from plastix.envs.grid.taskmix import TASKMIX_ID, TaskMixOptions
from plastix.nets.build import MoEConfig, NetConfig
from plastix.run.config import ConfigError, RunConfig, validate
from plastix.run.load import load
from plastix.run.train import train

TASKS = ("MiniGrid-Empty-5x5-v0", "MiniGrid-DoorKey-5x5-v0")


def _mix(**kw):
    return make(TASKMIX_ID, options=TaskMixOptions(tasks=TASKS, **kw))


@pytest.mark.parametrize("task", [0, 1])
def test_each_task_steps_exactly_as_its_own_env(task):
    mix, single = _mix(), make(TASKS[task])
    state = mix.reset_env(jax.random.PRNGKey(3)).replace(task=jnp.int32(task))
    own = single.reset_env(jax.random.fold_in(jax.random.PRNGKey(3), task))
    jax.tree.map(np.testing.assert_array_equal, state.states[task], own)  # the same first state
    rng = np.random.default_rng(task)
    mix_step, own_step = jax.jit(mix.step_env), jax.jit(single.step_env)
    for t in range(40):
        key, action = jax.random.PRNGKey(100 + t), jnp.int32(rng.integers(0, 7))
        state, reward, term, trunc, info = mix_step(key, state, action)
        own, r, te, tr, inf = own_step(key, own, action)
        jax.tree.map(np.testing.assert_array_equal, state.states[task], own)
        assert (reward, term, trunc, info["success"]) == (r, te, tr, inf["success"])
        assert int(info["task"]) == task
        obs = mix.observe(state)
        np.testing.assert_array_equal(obs[..., :3], single.observe(own))
        np.testing.assert_array_equal(obs[..., 3:], np.broadcast_to(np.eye(2)[task], (7, 7, 2)))


def test_task_ids_reach_task_routed_experts():
    mix = _mix()
    agent = PPO(mix.spec, PPOConfig(num_envs=2, num_steps=4, num_minibatches=1), 1,
                NetConfig(hidden=(16,), moe=MoEConfig(kind="task", experts=2)))
    params = jax.jit(agent.init)(jax.random.PRNGKey(0)).params
    obs, _ = jax.vmap(mix.reset)(jax.random.split(jax.random.PRNGKey(1), 4))
    obs = obs.at[2:, ..., 3:].set(jnp.asarray([0, 1], obs.dtype))  # envs 2, 3 as task 1
    np.testing.assert_array_equal(task_ids(obs, mix.spec), [0, 0, 1, 1])
    policy, value = jax.jit(agent.apply)(params, obs)
    explicit = jax.jit(lambda p, o, t: agent.network.apply({"params": p}, o, t))
    for task in (0, 1):
        p, v = explicit(params, obs, jnp.full(4, task))
        mine = np.asarray(task_ids(obs, mix.spec)) == task
        np.testing.assert_allclose(np.asarray(p)[mine], np.asarray(policy)[mine], rtol=1e-6)
        assert not np.allclose(np.asarray(v)[~mine], np.asarray(value)[~mine])


def test_continual_schedule_switches_every_n_steps():
    mix = _mix(switch_every=7)
    step = jax.jit(jax.vmap(mix.step))
    obs, state = jax.vmap(mix.reset)(jax.random.split(jax.random.PRNGKey(0), 3))
    tasks = []
    for t in range(30):
        obs, state, _, _, trunc, info = step(jax.random.split(jax.random.PRNGKey(t), 3), state,
                                             jnp.full(3, 2, jnp.int32))
        tasks.append(np.asarray(info["task"]))
        if (t + 1) % 7 == 0:
            assert np.asarray(trunc).all()  # the episode in flight ends at the switch
    np.testing.assert_array_equal(np.array(tasks)[:, 0], [(t // 7) % 2 for t in range(30)])
    np.testing.assert_array_equal(task_ids(obs, mix.spec), [(30 // 7) % 2] * 3)


def test_continual_schedule_resumes_where_it_was_and_logs_returns_per_task(tmp_path):
    config = RunConfig(env=TASKMIX_ID, taskmix=TaskMixOptions(tasks=TASKS, switch_every=100), seeds=1,
                       total_steps=4096, log_every=2048, eval_episodes=2, out_dir=str(tmp_path), name="c",
                       progress=False)
    train(config)
    rows = [json.loads(line) for line in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    for name in TASKS:  # each task's episodes' mean return, per seed
        assert all(len(r[f"episode_return/{name}"]) == 1 for r in rows)
    assert any(r[f"episode_return/{TASKS[0]}"][0] is not None for r in rows)
    run = load(tmp_path / "c")
    run.loop.close()
    # the checkpoint holds every env's clock: 4,096 steps over 16 envs
    np.testing.assert_array_equal(np.asarray(run.runner.env_state.t), np.full((1, 16), 256))
    np.testing.assert_array_equal(np.asarray(run.runner.env_state.task), np.full((1, 16), (256 // 100) % 2))


def test_bad_mixes_fail_before_anything_is_built():
    with pytest.raises(ConfigError, match=r"taskmix.tasks: .*unknown env id 'MiniGrid-DoorKey-5x6-v0'.*"
                                          r"MiniGrid-DoorKey-5x5-v0"):
        validate(RunConfig(env=TASKMIX_ID,
                           taskmix=TaskMixOptions(tasks=(TASKS[0], "MiniGrid-DoorKey-5x6-v0"))))
    with pytest.raises(ConfigError, match="taskmix.tasks: a mix needs at least two"):
        validate(RunConfig(env=TASKMIX_ID, taskmix=TaskMixOptions(tasks=(TASKS[0],))))
    with pytest.raises(ConfigError, match="taskmix.tasks: the tasks' observations differ in shape"):
        validate(RunConfig(env=TASKMIX_ID, observation="full",
                           taskmix=TaskMixOptions(tasks=("MiniGrid-Empty-5x5-v0", "MiniGrid-Empty-8x8-v0"))))
    with pytest.raises(ConfigError, match="taskmix.switch_every: .*never switches"):
        validate(RunConfig(env=TASKMIX_ID, total_steps=10_000,
                           taskmix=TaskMixOptions(tasks=TASKS, switch_every=1000)))
    net = NetConfig(moe=MoEConfig(kind="task", experts=4))
    with pytest.raises(ConfigError, match="net.moe.experts: .*2 tasks.*got 4"):
        validate(RunConfig(env=TASKMIX_ID, taskmix=TaskMixOptions(tasks=TASKS), net=net))
    with pytest.raises(ConfigError, match="net.moe.kind: task routing needs task ids"):
        validate(RunConfig(env=TASKMIX_ID, taskmix=TaskMixOptions(tasks=TASKS, task_in_obs=False),
                           net=dataclasses.replace(net, moe=MoEConfig(kind="task", experts=2))))
    with pytest.raises(ConfigError, match="taskmix: the task-mix options apply to TaskMix/MiniGrid-v0"):
        validate(RunConfig(taskmix=TaskMixOptions(tasks=TASKS)))
