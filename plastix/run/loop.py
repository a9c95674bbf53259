"""The on-device training loop: rollouts and updates under one ``jit``, ``lax.scan`` over updates,
``vmap`` over seeds (sharded over devices when several are visible).

Training runs in *chunks* of ``updates_per_chunk`` updates: each chunk is one call of the same compiled
function, and between chunks the host logs, checkpoints and draws the progress bar. The whole
`Runner` (agent, env states, RNG keys) is the loop's carry, so a run restored from a chunk boundary
continues bit-for-bit.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from plastix.agents.rollout import Rollout


@struct.dataclass
class Runner:
    """The loop's carry for one seed."""

    agent: Any
    env_state: Any  # batched [num_envs]
    obs: jax.Array  # [num_envs, ...]
    key: jax.Array
    episode_return: jax.Array  # [num_envs], running return of the current episodes
    episode_length: jax.Array  # [num_envs]
    env_steps: jax.Array  # int32 scalar


def make_init(env: Any, agent: Any, num_envs: int):
    """``key -> Runner`` for one seed."""

    def init(key: jax.Array) -> Runner:
        k_agent, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_env, num_envs))
        return Runner(
            agent=agent.init(k_agent),
            env_state=env_state,
            obs=obs,
            key=k_run,
            episode_return=jnp.zeros(num_envs, jnp.float32),
            episode_length=jnp.zeros(num_envs, jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )

    return init


def make_update(env: Any, agent: Any, num_envs: int, num_steps: int, hook: Any = None):
    """``Runner -> (Runner, metrics)``: one rollout of ``num_steps x num_envs`` then one agent update,
    then ``hook(agent_state, rollout, key) -> (agent_state, metrics)`` when given (plasticity probes
    and resets, `plastix.plasticity.hook`).

    Metrics hold sums over the episodes that ended in this rollout (return, length, successes, count)
    and the agent's update metrics.
    """
    step_env = jax.vmap(env.step)

    def env_step(runner: Runner, _):
        key, k_act, k_env = jax.random.split(runner.key, 3)
        action, aux = agent.act(runner.agent, runner.obs, k_act)
        obs, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, num_envs), runner.env_state, action
        )
        done = terminated | truncated
        ep_return = runner.episode_return + reward
        ep_length = runner.episode_length + 1
        ended = {
            "episodes": done.sum(),
            "return_sum": jnp.where(done, ep_return, 0.0).sum(),
            "length_sum": jnp.where(done, ep_length, 0).sum(),
            "success_sum": (done & info["success"]).sum(),
        }
        transition = Rollout(
            obs=runner.obs,
            action=action,
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            final_obs=info["final_obs"],
            log_prob=aux["log_prob"],
            value=aux["value"],
            last_obs=obs,
        )
        runner = runner.replace(
            env_state=env_state,
            obs=obs,
            key=key,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
        )
        return runner, (transition, ended)

    def update(runner: Runner, _=None):
        runner, (rollout, ended) = jax.lax.scan(env_step, runner, None, num_steps)
        rollout = rollout.replace(last_obs=runner.obs)
        key, k_update = jax.random.split(runner.key)
        agent_state, metrics = agent.update(runner.agent, rollout, k_update)
        if hook is not None:
            key, k_hook = jax.random.split(key)
            agent_state, extra = hook(agent_state, rollout, k_hook)
            metrics = {**metrics, **extra}
        runner = runner.replace(
            agent=agent_state, key=key, env_steps=runner.env_steps + num_steps * num_envs
        )
        metrics = {**metrics, **jax.tree.map(jnp.sum, ended)}
        return runner, metrics

    return update


def make_chunk(env: Any, agent: Any, num_envs: int, num_steps: int, updates_per_chunk: int,
               num_seeds: int = 1, hook: Any = None):
    """Jitted ``Runner[seeds] -> (Runner[seeds], metrics[seeds, updates])``.

    With several devices and a seed count they divide, each device runs its own seeds
    (``shard_map``): seeds never communicate, so no collective is ever needed.
    """
    update = make_update(env, agent, num_envs, num_steps, hook)

    def chunk(runner: Runner):
        return jax.lax.scan(update, runner, None, updates_per_chunk)

    return jax.jit(_per_device(jax.vmap(chunk), num_seeds))


def seed_mesh(num_seeds: int) -> Mesh | None:
    """A 1-D device mesh over seeds, when there are several devices and they divide the seeds."""
    devices = jax.devices()
    if len(devices) < 2 or num_seeds % len(devices):
        return None
    return Mesh(devices, ("seeds",))


def _per_device(fn, num_seeds: int):
    mesh = seed_mesh(num_seeds)
    if mesh is None:
        return fn
    spec = PartitionSpec("seeds")
    return jax.shard_map(fn, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)


def make_evaluate(env: Any, agent: Any, num_episodes: int, explore: bool = True,
                  num_seeds: int = 1):
    """Jitted ``(agent_state[seeds], keys[seeds]) -> {return, success}[seeds, episodes]``.

    Runs ``num_episodes`` fresh envs per seed for one episode each (``max_steps`` scan steps).
    ``explore=True`` samples from the policy, which is how a stochastic policy is meant to act.
    """
    step_env = jax.vmap(env.step)

    def evaluate(agent_state, key):
        k_reset, k_run = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, num_episodes))
        init = (obs, env_state, jnp.zeros(num_episodes), jnp.zeros(num_episodes, bool),
                jnp.zeros(num_episodes, bool))

        def body(carry, k):
            obs, env_state, ret, success, finished = carry
            k_act, k_env = jax.random.split(k)
            action, _ = agent.act(agent_state, obs, k_act, explore)
            obs, env_state, reward, term, trunc, info = step_env(
                jax.random.split(k_env, num_episodes), env_state, action
            )
            ret = ret + jnp.where(finished, 0.0, reward)
            success = success | (~finished & info["success"])
            finished = finished | term | trunc
            return (obs, env_state, ret, success, finished), None

        (_, _, ret, success, _), _ = jax.lax.scan(
            body, init, jax.random.split(k_run, env.max_steps)
        )
        return {"return": ret, "success": success}

    return jax.jit(_per_device(jax.vmap(evaluate), num_seeds))


def shard_seeds(tree: Any, num_seeds: int) -> Any:
    """Place the leading (seed) axis across all visible devices when they divide it evenly."""
    mesh = seed_mesh(num_seeds)
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec("seeds")))
