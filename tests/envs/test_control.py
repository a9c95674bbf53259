"""Control host envs: registry, spaces, action rescaling, auto-reset with final observations, seeded
resets, and snapshots that continue a simulation exactly."""

import numpy as np
import pytest
from dm_control import suite

from plastix.envs import list_envs, make
from plastix.envs.api import HostVecEnv, UnknownEnvError
from plastix.envs.control import DMC_TASKS, ControlSetupError, dmc_task


def test_dmc_task_list_is_the_suites():
    assert sorted((d, t) for d, ts in DMC_TASKS.items() for t in ts) == sorted(suite.ALL_TASKS)
    assert {"Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5",
            "dmc/cheetah-run", "dmc/walker-walk", "dmc/quadruped-run", "dmc/humanoid-run"} <= set(list_envs())


def test_unknown_dmc_ids_list_close_matches():
    with pytest.raises(UnknownEnvError, match="dmc/cheetah-run"):
        make("dmc/cheetah-runn")
    with pytest.raises(ControlSetupError, match=r"Did you mean: dmc/walker-walk"):
        dmc_task("dmc/walker-wallk")


@pytest.mark.parametrize("env_id,obs,act", [("Hopper-v5", 11, 3), ("HalfCheetah-v5", 17, 6),
                                            ("dmc/cheetah-run", 17, 6), ("dmc/walker-walk", 24, 6)])
def test_spaces(env_id, obs, act):
    env = make(env_id)
    spec = env.spec
    assert spec.observation_space.shape == (obs,) and spec.action_space.shape == (act,)
    assert (spec.action_space.low, spec.action_space.high) == (-1.0, 1.0) and not spec.on_device
    vec = env.vector(3)
    assert isinstance(vec, HostVecEnv)
    o = vec.reset(np.array([1, 2, 3]))
    assert o.shape == (3, obs) and o.dtype == np.float32
    o, r, term, trunc, info = vec.step(np.zeros((3, act)))
    assert o.shape == (3, obs) and r.shape == term.shape == trunc.shape == (3,)
    assert info["final_obs"].shape == (3, obs)
    vec.close()


def test_actions_are_rescaled_to_the_env_bounds():
    vec = make("Humanoid-v5").vector(1)
    env = vec.envs[0]
    np.testing.assert_allclose(env.low, -0.4)
    np.testing.assert_allclose(env.high, 0.4)
    vec.reset(0)
    seen = []
    env.env.step = lambda a: seen.append(a) or (np.zeros(348), 0.0, False, False, {})
    vec.step(np.array([[1.0] * 17]))
    vec.step(np.array([[-2.0] * 17]))  # clipped to -1 first
    np.testing.assert_allclose(seen[0], 0.4)
    np.testing.assert_allclose(seen[1], -0.4)


def test_hopper_terminates_truncates_and_auto_resets_with_the_final_observation():
    vec = make("Hopper-v5").vector(2)
    vec.reset(np.array([0, 1]))
    # a hard push forward topples a hopper within a few hundred steps: termination, then a new episode
    for _ in range(1000):
        o, r, term, trunc, info = vec.step(np.ones((2, 3)))
        if term.any():
            break
    i = int(np.argmax(term))
    assert term[i] and not trunc[i]
    assert not np.allclose(info["final_obs"][i], o[i])  # o is the next episode's first observation
    assert abs(o[i][0] - 1.25) < 0.01  # Hopper's initial height (init_qpos 1.25 plus small noise)
    assert vec.episode[i] == 1
    vec.close()


def test_dmc_truncates_at_its_time_limit_with_action_repeat():
    env = make("dmc/cartpole-balance", action_repeat=4)
    assert env.spec.max_steps == 250
    vec = env.vector(1)
    vec.reset(0)
    steps = 0
    while True:
        steps += 1
        _, r, term, trunc, _ = vec.step(np.zeros((1, 1)))
        assert 0.0 <= r[0] <= 4.0  # four physics steps of rewards in [0, 1]
        if term[0] or trunc[0]:
            break
    assert steps == 250 and trunc[0] and not term[0]


@pytest.mark.parametrize("env_id,atol", [("Hopper-v5", 0.0), ("dmc/walker-walk", 1e-5)])
def test_seeded_resets_and_snapshots_continue_exactly(env_id, atol):
    """Bit for bit on gymnasium MuJoCo; on DMC to float32 rounding (dm_control steps mj_step2 then
    mj_step1, and the forward pass a restore needs differs in the last bit after ~80 steps)."""
    env = make(env_id)
    act = env.spec.action_space.shape[0]
    actions = np.random.default_rng(0).uniform(-1, 1, (300, 2, act))
    a, b = env.vector(2), env.vector(2)
    np.testing.assert_array_equal(a.reset(np.array([5, 6])), b.reset(np.array([5, 6])))
    for t in range(150):
        a.step(actions[t])
    snap = a.snapshot()
    rest_a = [a.step(actions[t]) for t in range(150, 300)]
    b.restore(snap)  # b never ran those 150 steps
    rest_b = [b.step(actions[t]) for t in range(150, 300)]
    for x, y in zip(rest_a, rest_b, strict=True):
        for u, v in zip(x[:4], y[:4], strict=True):
            np.testing.assert_allclose(u, v, rtol=0, atol=atol)
    a.close(), b.close()


def test_bad_action_repeat():
    with pytest.raises(ControlSetupError, match="action_repeat: must be a positive integer"):
        make("dmc/cheetah-run", action_repeat=0)
