"""PPO trains on any registered gridworld by id."""

import dataclasses

import gymnasium as gym
import jax
import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
import numpy as np
import pytest

import plastix.envs as E
from plastix.agents.ppo import PPO, PPOConfig
from plastix.run.config import RunConfig, build_env, validate
from plastix.run.loop import make_chunk, make_init


@pytest.mark.parametrize("env_id", E.list_envs("MiniGrid-"))
def test_every_grid_id_validates(env_id):
    config = validate(dataclasses.replace(RunConfig(), env=env_id))
    spec = build_env(config).spec
    reference = gym.make(env_id)  # minigrid's own: the egocentric image and the action count of the id
    assert spec.env_id == env_id
    assert spec.observation_space.shape == reference.observation_space["image"].shape
    assert spec.action_space.n == reference.action_space.n


@pytest.mark.parametrize("env_id", [pytest.param("MiniGrid-Dynamic-Obstacles-5x5-v0", marks=pytest.mark.slow),
                                    pytest.param("MiniGrid-MemoryS7-v0", marks=pytest.mark.slow),
                                    pytest.param("MiniGrid-KeyCorridorS3R1-v0", marks=pytest.mark.slow)])
def test_ppo_updates_on_other_families(env_id):
    env = E.make(env_id)
    cfg = PPOConfig(num_envs=4, num_steps=16, num_minibatches=2)
    agent = PPO(env.spec, cfg, num_updates=2)
    runner = jax.vmap(make_init(env, agent))(jax.random.split(jax.random.PRNGKey(0), 2))
    runner, metrics = make_chunk(env, agent, 2, num_seeds=2)(runner, 0)
    assert np.isfinite(np.asarray(metrics["loss/total"])).all()
    assert int(runner.env_steps[0]) == 2 * 4 * 16
