"""PPO trains on any registered gridworld by id."""

import dataclasses

import jax
import numpy as np
import pytest

import plastix.envs as E
from plastix.agents.ppo import PPO, PPOConfig
from plastix.run.config import RunConfig, validate
from plastix.run.loop import make_chunk, make_init


@pytest.mark.parametrize("env_id", E.list_envs("MiniGrid-"))
def test_every_grid_id_validates(env_id):
    validate(dataclasses.replace(RunConfig(), env=env_id))


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
