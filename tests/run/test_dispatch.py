"""Convolutional agents on CPU: the device loop dispatches one compiled iteration per call from the host
(`HostDispatch`) and PPO writes its epochs out (`unrolled`), so no network gradient runs inside a loop or a
conditional (XLA:CPU runs those 10x slower). Both give the parameters the scanned loop gives, to float
rounding (XLA fuses the two programs differently), and a resumed run is bitwise the uninterrupted one."""

import json
import shutil
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plastix.envs as E
from plastix.agents.api import convolves, loops_slow
from plastix.agents.dqn import DQN, DQNConfig
from plastix.agents.ppo import PPO, PPOConfig
from plastix.envs.api import Box, Discrete, Env
from plastix.nets.build import EncoderConfig, NetConfig
from plastix.plasticity.hook import PlasticityConfig, make_hook
from plastix.run.config import from_dict
from plastix.run.loop import DeviceLoop, HostDispatch
from plastix.run.train import resume, train

CNN = NetConfig(encoder=EncoderConfig(kind="nature"), hidden=(16,), activation="relu")
RTOL, ATOL = 1e-4, 1e-6  # float32 rounding of differently fused programs, after a few steps


@dataclass(frozen=True, eq=False)
class Frames(Env):
    """12x12x2 uint8 images the actions roll, random terminations, a 6-step limit: a pixel env cheap
    enough for convolutional agents in tests."""

    env_id: str = "Test-Frames-v0"

    @property
    def observation_space(self):
        return Box(0, 255, (12, 12, 2), jnp.uint8)

    @property
    def action_space(self):
        return Discrete(3)

    @property
    def max_steps(self):
        return 6

    def reset_env(self, key, params=None):
        return {"img": jax.random.randint(key, (12, 12, 2), 0, 256).astype(jnp.uint8), "t": jnp.int32(0)}

    def step_env(self, key, state, action, params=None):
        img = jnp.roll(state["img"], action, axis=0) + jnp.uint8(1)
        t = state["t"] + 1
        reward = (img[0, 0, 0] > 128).astype(jnp.float32)
        return {"img": img, "t": t}, reward, jax.random.uniform(key) < 0.1, t >= 6, {}

    def observe(self, state, params=None):
        return state["img"]


E.register("Test-Frames-v0", Frames)


def _pixels():
    return Frames()


def _init(env, agent, seeds: int = 2):
    return DeviceLoop(env, agent, seeds, dispatch=False).init(jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds)))


def _run(env, agent, dispatch: bool, chunks: tuple[int, ...], runner, hook=None):
    """The runner and metrics after ``chunks`` (lengths) of iterations from ``runner``; every chunk
    leaves its input intact."""
    loop = DeviceLoop(env, agent, jax.tree.leaves(runner)[0].shape[0], dispatch=dispatch)
    start, parts = 0, []
    for iterations in chunks:
        fn = loop.chunk(iterations, hook, runner)
        before = jax.tree.map(np.asarray, runner)
        out, metrics = fn(runner, np.int32(start))
        jax.tree.map(np.testing.assert_array_equal, before, jax.tree.map(np.asarray, runner))
        runner, start = out, start + iterations
        parts.append(jax.device_get(metrics))
    metrics = jax.tree.map(lambda *x: np.concatenate(x, 1), *parts)
    return jax.device_get(runner), metrics, loop


def _close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=RTOL, atol=ATOL), a, b)


def test_the_decision_reads_convolutions_from_the_network():
    env = _pixels()
    ppo = PPO(env.spec, PPOConfig(num_envs=2, num_steps=8), 4, CNN)
    mlp = PPO(env.spec, PPOConfig(num_envs=2, num_steps=8), 4, NetConfig())
    example = (jnp.zeros((1, 12, 12, 2), jnp.uint8), None)
    assert convolves(ppo.network, *example) and not convolves(mlp.network, *example)
    cpu = jax.default_backend() == "cpu"
    assert loops_slow((ppo.network, example)) == cpu and not loops_slow((mlp.network, example))
    assert ppo.unroll == cpu and not mlp.unroll
    assert DeviceLoop(env, ppo, 1).dispatch == cpu and not DeviceLoop(env, mlp, 1).dispatch


def test_ppo_cnn_dispatched_and_unrolled_equals_scanned():
    env = _pixels()
    agent = PPO(env.spec, PPOConfig(num_envs=2, num_steps=8, num_minibatches=1, update_epochs=2), 4, CNN)
    runner = _init(env, agent)
    agent.unroll = False
    scanned, m_scan, _ = _run(env, agent, False, (2,), runner)
    agent.unroll = True
    dispatched, m_disp, _ = _run(env, agent, True, (2,), runner)
    assert m_disp.values["loss/total"].shape == (2, 2)
    _close(scanned.agent.params, dispatched.agent.params)
    _close(m_scan, m_disp)
    np.testing.assert_array_equal(scanned.obs, dispatched.obs)  # the same actions were drawn
    # one call per seed (the default on one device) or one vmapped over seeds: the same to rounding; a
    # seed dispatched alone is bitwise the same seed among others
    vmapped = HostDispatch(env, agent, 2, per_seed=False).chunk(2)(runner, 0)[0]
    _close(jax.device_get(vmapped).agent.params, dispatched.agent.params)
    alone, _, _ = _run(env, agent, True, (2,), jax.tree.map(lambda x: x[:1], runner))
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x[0], y[0]), alone.agent, dispatched.agent)


def test_dqn_cnn_dispatched_equals_scanned_with_updates_targets_probes_and_resets():
    env = _pixels()
    config = DQNConfig(num_envs=2, buffer_size=64, min_replay=8, batch_size=4, update_period=2,
                       target_update_period=3, eps_decay_period=10)
    agent = DQN(env.spec, config, 8, CNN)
    hook = make_hook(agent, PlasticityConfig(metrics="dormant", every=2, reset="redo", reset_every=2,
                                             tau=0.5))
    runner = _init(env, agent)
    scanned, m_scan, _ = _run(env, agent, False, (8,), runner, hook)
    dispatched, m_disp, loop = _run(env, agent, True, (5, 3), runner, hook)  # chunks share the cases
    assert set(loop._dispatcher._jitted) == {(False, (False, False)), (True, (False, False)),
                                               (True, (True, True))}
    np.testing.assert_array_equal(m_scan.updated, m_disp.updated)
    assert m_disp.updated.sum() == 2 * 3  # 2 seeds, updates at iterations 4, 6, 8 (1-based)
    assert np.isfinite(m_disp.values["activity/dormant"]).sum() == 2 * 1  # the second update measures
    assert (m_disp.values["activity/reset_fraction"][:, 5] > 0).all()  # and resets
    _close(scanned.agent, dispatched.agent)  # parameters, target, optimiser and the replay
    _close(m_scan, m_disp)


def _train_and_resume(tmp_path, config: dict):
    """Train, drop the last checkpoint (as if killed after the chunk before), resume: the last chunk runs
    again in a new loop and ends with the uninterrupted run's parameters, bitwise."""
    config = from_dict({"total_steps": 96, "seeds": 2, "log_every": 32, "eval_episodes": 2,
                        "eval_max_steps": 8, "progress": False, "out_dir": str(tmp_path), "name": "run",
                        **config})
    result = train(config)
    rows = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    shutil.rmtree(result.run_dir / "checkpoints" / "3")
    again = resume(result.run_dir, say=lambda _: None)
    rerun = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rerun) == 3
    # the last chunk's losses (float repr, so bitwise) and the final evaluation are the same
    last, resumed = json.loads(rows[-1]), json.loads(rerun[-1])
    assert {k: v for k, v in last.items() if k != "steps_per_s"} == \
        {k: v for k, v in resumed.items() if k != "steps_per_s"}
    assert again.eval_return == result.eval_return


@pytest.mark.parametrize("agent", [pytest.param("ppo", marks=pytest.mark.slow), "dqn"])
def test_cnn_train_runs_dispatched_and_resumes_bitwise(tmp_path, agent):
    section = {"ppo": {"num_envs": 2, "num_steps": 16, "num_minibatches": 2, "update_epochs": 2},
               "dqn": {"num_envs": 2, "buffer_size": 64, "min_replay": 8, "batch_size": 4,
                       "update_period": 2, "target_update_period": 5}}[agent]
    _train_and_resume(tmp_path, {"env": "Test-Frames-v0", "agent": agent, agent: section,
                                 "net": {"encoder": {"kind": "nature"}, "hidden": [16]}})


@pytest.mark.slow  # ~80 s: two Impala CNNs on 56x56 pixels
def test_impala_pixel_gridworld_trains_dispatched_and_resumes_bitwise(tmp_path):
    _train_and_resume(tmp_path, {"env": "MiniGrid-Empty-5x5-v0", "observation": "rgb",
                                 "net": {"encoder": {"kind": "impala"}, "hidden": [16]},
                                 "ppo": {"num_envs": 2, "num_steps": 16, "num_minibatches": 2}})
