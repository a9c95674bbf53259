"""PPO trains on any registered gridworld by id."""

import dataclasses

import gymnasium as gym
import jax
import jax.numpy as jnp
import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
import numpy as np
import pytest

import plastix.envs as E
from plastix.agents.ppo import PPO, PPOConfig
from plastix.run.config import RunConfig, build_env, validate
from plastix.run.loop import make_chunk, make_init, make_iteration


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
    runner, metrics = make_chunk(env, agent, 2, num_seeds=2)(runner, 0, 2)
    assert np.isfinite(np.asarray(metrics.values["loss/total"])).all()
    assert int(runner.env_steps[0]) == 2 * 4 * 16


def _primitives(jaxpr, name: str) -> int:
    """How many ``name`` equations a closed jaxpr holds, sub-jaxprs (loop bodies, branches) included."""
    count = 0
    for eqn in jaxpr.eqns:
        count += eqn.primitive.name == name
        for sub in jax.core.jaxprs_in_params(eqn.params):
            count += _primitives(sub, name)
    return count


def test_ppo_branches_stay_branches_in_the_program_vmapped_over_seeds():
    """PPO's truncation branches (observe final states, bootstrap truncated rows) decide on a predicate
    reduced over the seeds (`over_seeds`), so the loop's vmap over seeds keeps them as conditionals
    instead of selects that run both sides: the program `plastix train` runs has every cond of one
    seed's iteration."""
    env = E.make("MiniGrid-DoorKey-5x5-v0")
    agent = PPO(env.spec, PPOConfig(num_envs=4, num_steps=8, num_minibatches=2), 4)
    runner = jax.vmap(make_init(env, agent))(jax.random.split(jax.random.PRNGKey(0), 2))
    one = jax.tree.map(lambda x: x[0], runner)
    alone = _primitives(jax.make_jaxpr(make_iteration(env, agent))(one, jnp.int32(0)).jaxpr, "cond")
    vmapped = jax.make_jaxpr(make_chunk(env, agent, 2, num_seeds=2))(runner, np.int32(0), np.int32(2))
    assert alone >= 2
    assert _primitives(vmapped.jaxpr, "cond") == alone
