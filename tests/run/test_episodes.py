"""Episode statistics (`plastix.run.episodes`): the rule by hand, the same in numpy and JAX, and the same
env run through both training loops (a JAX env wrapped as a host env) gives the same statistics and
evaluation numbers."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.agents.dqn import DQN, DQNConfig
from plastix.envs.api import Box, Discrete, Env, auto_reset
from plastix.nets.build import NetConfig
from plastix.run.episodes import evaluation_step, track
from plastix.run.host_loop import HostLoop
from plastix.run.loop import DeviceLoop


def test_track_by_hand_with_game_ends_scores_success_and_tasks():
    # 3 envs: env 0 ends its episode (game over), env 1 loses a life (terminated, no episode end), env 2
    # runs on; the score (unclipped) is what the return sums, not the (clipped) reward
    ep_return, ep_length = np.array([5.0, 2.0, 1.0], np.float32), np.array([9, 3, 4], np.int32)
    info = {"episode_end": np.array([True, False, False]), "score": np.array([10.0, 4.0, 0.5]),
            "success": np.array([True, True, False]), "task": np.array([1, 0, 1])}
    args = (np.array([1.0, 1.0, 0.5], np.float32), np.array([True, True, False]), np.zeros(3, bool))
    ret, length, sums = track(np, ep_return, ep_length, *args, info, num_tasks=2)
    np.testing.assert_array_equal(ret, [0.0, 6.0, 1.5])
    np.testing.assert_array_equal(length, [0, 4, 5])
    assert (sums["episodes"], sums["return_sum"], sums["length_sum"], sums["success_sum"]) == (1, 15.0, 10, 1)
    np.testing.assert_array_equal(sums["task_episodes"], [0.0, 1.0])
    np.testing.assert_array_equal(sums["task_return_sum"], [0.0, 15.0])
    assert set(sums) == {"episodes", "return_sum", "length_sum", "success_sum", "task_episodes",
                         "task_return_sum"}
    jax_out = track(jnp, jnp.asarray(ep_return), jnp.asarray(ep_length), *map(jnp.asarray, args),
                    jax.tree.map(jnp.asarray, info), num_tasks=2)
    jax.tree.map(np.testing.assert_array_equal, jax_out, (ret, length, sums))
    # without episode_end or score: terminations and truncations end episodes, rewards are summed
    ret, _, sums = track(np, ep_return, ep_length, *args, {})
    np.testing.assert_array_equal(ret, [0.0, 0.0, 1.5])
    assert (sums["episodes"], sums["return_sum"]) == (2, 9.0) and "success_sum" not in sums


def test_evaluation_counts_each_envs_first_episode_only():
    tally = (np.zeros(2, np.float32), np.zeros(2, bool), np.zeros(2, bool))
    steps = [(np.array([1.0, 1.0]), np.array([True, False]), np.array([False, False]), [False, True]),
             (np.array([7.0, 2.0]), np.array([False, False]), np.array([False, True]), [True, False])]
    for reward, term, trunc, success in steps:
        tally = evaluation_step(np, tally, reward, term, trunc, {"success": np.array(success)})
    np.testing.assert_array_equal(tally[0], [1.0, 3.0])  # env 0's second episode is not counted
    np.testing.assert_array_equal(tally[1], [False, True])
    assert tally[2].all()


@struct.dataclass
class Count:
    t: jax.Array
    episode: jax.Array


class Rounds(Env):
    """Deterministic whatever the actions and keys: episode e lasts 2 + e % 3 steps (the 4-step ones
    truncate), reward t on step t, success on even episodes, task e % 2; the episode counter carries
    across resets (its own step), so both loops see the same episodes."""

    env_id = "Rounds-v0"
    observation_space = Box(0.0, 10.0, (2,), np.float32)
    action_space = Discrete(2)
    max_steps = 100

    @property
    def spec(self):
        return dataclasses.replace(super().spec, task_names=("even", "odd"))

    def reset_env(self, key, params=None):
        return Count(jnp.int32(0), jnp.int32(0))

    def step_env(self, key, state, action, params=None):
        t, length = state.t + 1, 2 + state.episode % 3
        ended = t >= length
        info = {"success": ended & (state.episode % 2 == 0), "task": state.episode % 2}
        return (Count(t, state.episode), t.astype(jnp.float32), ended & (length != 4), ended & (length == 4),
                info)

    def step(self, key, state, action, params=None):
        next_state, reward, terminated, truncated, info = self.step_env(key, state, action)
        return auto_reset(self, params, next_state, Count(jnp.int32(0), next_state.episode + 1), reward,
                          terminated, truncated, info)

    def observe(self, state, params=None):
        return jnp.stack([state.t, state.episode % 2]).astype(jnp.float32)


class OnHost:
    """A JAX env as a host env family (`HostVecEnv` batches stepped in numpy)."""

    def __init__(self, env: Env):
        self.env, self.env_id = env, env.env_id
        self.spec = dataclasses.replace(env.spec, on_device=False)

    def vector(self, n: int) -> "HostBatch":
        return HostBatch(self.env, self.spec, n)


class HostBatch:
    def __init__(self, env: Env, spec, n: int):
        self.spec, self.num_envs = spec, n
        self._reset, self._step = jax.jit(jax.vmap(env.reset)), jax.jit(jax.vmap(env.step))

    def reset(self, seed):
        self.key = jax.random.PRNGKey(int(np.asarray(seed).ravel()[0]))
        obs, self.state = self._reset(jax.random.split(self.key, self.num_envs))
        return np.asarray(obs)

    def step(self, actions):
        self.key, k = jax.random.split(self.key)
        obs, self.state, *out, info = self._step(jax.random.split(k, self.num_envs), self.state,
                                                 jnp.asarray(actions))
        return (np.asarray(obs), *map(np.asarray, out), jax.tree.map(np.asarray, info))

    def close(self):
        pass


def test_both_loops_count_the_same_episodes_and_evaluate_the_same():
    env, seeds, iterations = Rounds(), 2, 12
    config = DQNConfig(num_envs=2, buffer_size=32, min_replay=4, batch_size=4, update_period=2,
                       target_update_period=4, eps_decay_period=8)
    net = NetConfig(hidden=(8,))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seeds))
    out = {}
    host = OnHost(env)
    for name, loop in (("device", DeviceLoop(env, DQN(env.spec, config, iterations, net), seeds)),
                       ("host", HostLoop(host, DQN(host.spec, config, iterations, net), seeds))):
        runner = loop.init(keys)
        runner, metrics = loop.chunk(iterations)(runner, 0)
        evaluation = loop.evaluator(3, 10)(runner.agent, keys)
        out[name] = (jax.device_get(metrics.episodes), jax.device_get(evaluation),
                     np.asarray(runner.episode_return), np.asarray(runner.episode_length))
        loop.close()
    jax.tree.map(np.testing.assert_array_equal, out["device"], out["host"])
    sums, evaluation, *_ = out["device"]
    # by hand, per env over 12 steps: episodes of 2, 3, 4 (truncated) and 2 steps end at steps 2, 5, 9, 11
    total = {k: v.sum(1) for k, v in sums.items()}
    np.testing.assert_array_equal(total["episodes"], [8, 8])  # 2 envs per seed
    np.testing.assert_array_equal(total["return_sum"], [2 * (3 + 6 + 10 + 3)] * 2)
    np.testing.assert_array_equal(total["length_sum"], [2 * 11] * 2)
    np.testing.assert_array_equal(total["success_sum"], [4, 4])
    np.testing.assert_array_equal(total["task_episodes"], [[4, 4]] * 2)
    np.testing.assert_array_equal(total["task_return_sum"], [[2 * 13, 2 * 9]] * 2)
    np.testing.assert_array_equal(evaluation["return"], np.full((2, 3), 3.0))  # a fresh env's episode 0
    assert evaluation["success"].all()
