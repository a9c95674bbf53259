"""The on-device training loop for JAX envs: env steps and the agent's learning under one ``jit``,
``lax.scan`` over iterations, ``vmap`` over seeds (sharded over devices when several are visible).

The loop owns stepping, episode statistics and chunking; what an iteration learns is the agent's
(`plastix.agents.api`). Training runs in *chunks* of iterations: each chunk is one call of a compiled
function, and between chunks the host logs, checkpoints and draws the progress bar. The whole
`Runner` (agent state with any replay buffer, env states, RNG keys) is the loop's carry, so a run
restored from a chunk boundary continues bit-for-bit.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from plastix.agents.api import Transitions


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


def make_init(env: Any, agent: Any):
    """``key -> Runner`` for one seed."""

    def init(key: jax.Array) -> Runner:
        k_agent, k_env, k_run = jax.random.split(key, 3)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_env, agent.num_envs))
        return Runner(
            agent=agent.init(k_agent),
            env_state=env_state,
            obs=obs,
            key=k_run,
            episode_return=jnp.zeros(agent.num_envs, jnp.float32),
            episode_length=jnp.zeros(agent.num_envs, jnp.int32),
            env_steps=jnp.zeros((), jnp.int32),
        )

    return init


def make_iteration(env: Any, agent: Any, hook: Any = None):
    """``(Runner, iteration) -> (Runner, metrics)``: step every env ``agent.steps_per_iteration`` times,
    hand the transitions to ``agent.learn``, then to ``hook(state, transitions, last_obs, key,
    iteration) -> (state, metrics)`` when given (plasticity probes and resets; an agent that fuses the
    probe into its update gets the hook's ``measure`` in ``learn``).

    Metrics hold sums over the episodes that ended in this iteration (return, length, count, and
    successes when the env reports ``info["success"]``) and the agent's own metrics.
    """
    step_env = functools.partial(env.step_batch, final_obs=agent.final_obs)
    num_envs = agent.num_envs

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
        }
        if "success" in info:
            ended["success_sum"] = (done & info["success"]).sum()
        if "task" in info:  # a task mix: episodes and returns per task
            ended_task = jax.nn.one_hot(info["task"], len(env.spec.task_names)) * done[:, None]
            ended["task_episodes"] = ended_task.sum(0)
            ended["task_return_sum"] = (ended_task * ep_return[:, None]).sum(0)
        transition = Transitions(obs=runner.obs, action=action, reward=reward, terminated=terminated,
                                 truncated=truncated, next_obs=info["final_obs"], aux=aux)
        runner = runner.replace(
            env_state=env_state,
            obs=obs,
            key=key,
            episode_return=jnp.where(done, 0.0, ep_return),
            episode_length=jnp.where(done, 0, ep_length),
        )
        return runner, (transition, ended)

    def iteration(runner: Runner, index: jax.Array):
        runner, (transitions, ended) = jax.lax.scan(env_step, runner, None, agent.steps_per_iteration)
        key, k_learn = jax.random.split(runner.key)
        agent_state, metrics = agent.learn(runner.agent, transitions, runner.obs, k_learn, index,
                                           **fused_probe(hook, index))
        if hook is not None:
            key, k_hook = jax.random.split(key)
            agent_state, extra = hook(agent_state, transitions, runner.obs, k_hook, index)
            metrics = {**metrics, **extra}
        runner = runner.replace(
            agent=agent_state, key=key,
            env_steps=runner.env_steps + agent.steps_per_iteration * num_envs,
        )
        metrics = {**metrics, **jax.tree.map(lambda x: x.sum(0), ended), "updated": agent.schedule(index)[0]}
        return runner, metrics

    return iteration


def fused_probe(hook: Any, index: Any, when: Any = None) -> dict[str, Any]:
    """``learn``'s extra keyword for an agent that measures inside its update: ``{"measure": ...}`` from
    the plasticity hook when it fuses, else nothing (agents without ``fuses_probe`` never see it)."""
    measure = None if hook is None else hook.measure_for(index, when)
    return {} if measure is None else {"measure": measure}


def make_chunk(env: Any, agent: Any, iterations: int, num_seeds: int = 1, hook: Any = None):
    """Jitted ``(Runner[seeds], start) -> (Runner[seeds], metrics[seeds, iterations])``: ``iterations``
    iterations from global index ``start``.

    ``start`` is not batched over seeds, so the agent's schedules (update period, target updates,
    plasticity cadence) stay real branches under ``vmap``. With several devices and a seed count they
    divide, each device runs its own seeds (``shard_map``): seeds never communicate.
    """
    step = make_iteration(env, agent, hook)

    def chunk(runner: Runner, start: jax.Array):
        return jax.lax.scan(step, runner, start + jnp.arange(iterations, dtype=jnp.int32))

    return jax.jit(_per_device(jax.vmap(chunk, in_axes=(0, None)), num_seeds, replicated=1))


def seed_mesh(num_seeds: int) -> Mesh | None:
    """A 1-D device mesh over seeds, when there are several devices and they divide the seeds."""
    devices = jax.devices()
    if len(devices) < 2 or num_seeds % len(devices):
        return None
    return Mesh(devices, ("seeds",))


def _per_device(fn, num_seeds: int, sharded: int = 1, replicated: int = 0):
    """``fn`` with its first ``sharded`` arguments split over the seed mesh, ``replicated`` more whole."""
    mesh = seed_mesh(num_seeds)
    if mesh is None:
        return fn
    spec = PartitionSpec("seeds")
    return jax.shard_map(fn, mesh=mesh, in_specs=(spec,) * sharded + (PartitionSpec(),) * replicated,
                         out_specs=spec, check_vma=False)


def make_evaluate(env: Any, agent: Any, num_episodes: int, num_seeds: int = 1, max_steps: int = 100_000):
    """Jitted ``(agent_state[seeds], keys[seeds]) -> {return, success}[seeds, episodes]``.

    Runs ``num_episodes`` fresh envs per seed until each has ended one episode (at most ``max_steps``
    steps), acting with ``agent.act(..., train=False)``. ``success`` is False where the env reports none.
    """
    step_env = jax.vmap(env.step)

    def evaluate(agent_state, key):
        k_reset, k_run = jax.random.split(key)
        obs, env_state = jax.vmap(env.reset)(jax.random.split(k_reset, num_episodes))
        zeros = jnp.zeros(num_episodes, bool)
        init = (jnp.zeros((), jnp.int32), obs, env_state, jnp.zeros(num_episodes), zeros, zeros)

        def body(carry):
            t, obs, env_state, ret, success, finished = carry
            k_act, k_env = jax.random.split(jax.random.fold_in(k_run, t))
            action, _ = agent.act(agent_state, obs, k_act, False)
            obs, env_state, reward, term, trunc, info = step_env(
                jax.random.split(k_env, num_episodes), env_state, action
            )
            ret = ret + jnp.where(finished, 0.0, reward)
            success = success | (~finished & info.get("success", zeros))
            return t + 1, obs, env_state, ret, success, finished | term | trunc

        def running(carry):
            return (carry[0] < max_steps) & ~carry[-1].all()

        _, _, _, ret, success, _ = jax.lax.while_loop(running, body, init)
        return {"return": ret, "success": success}

    return jax.jit(_per_device(jax.vmap(evaluate), num_seeds, sharded=2))


def shard_seeds(tree: Any, num_seeds: int) -> Any:
    """Place the leading (seed) axis across all visible devices when they divide it evenly."""
    mesh = seed_mesh(num_seeds)
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec("seeds")))


class DeviceLoop:
    """The on-device loop behind the interface `plastix.run.host_loop.HostLoop` shares with it:
    ``init(keys)``, ``chunk(iterations, hook, like)``, ``evaluator(num_episodes, max_steps)``,
    ``close()``."""

    donates = False  # a chunk leaves its input runner intact

    def __init__(self, env: Any, agent: Any, num_seeds: int):
        self.env, self.agent, self.num_seeds = env, agent, num_seeds

    def init(self, keys: jax.Array) -> Runner:
        """One runner per seed, stacked. ``lax.map``, not ``vmap``: jaxlib's batched QR (orthogonal
        init) can deadlock on CPU when several host devices share its thread pool."""
        init = make_init(self.env, self.agent)
        return shard_seeds(jax.block_until_ready(jax.jit(lambda ks: jax.lax.map(init, ks))(keys)),
                           self.num_seeds)

    def chunk(self, iterations: int, hook: Any = None, like: Runner | None = None):
        """`make_chunk`, compiled ahead of time for runners like ``like``."""
        fn = make_chunk(self.env, self.agent, iterations, self.num_seeds, hook)
        return fn.lower(like, np.int32(0)).compile() if like is not None else fn

    def evaluator(self, num_episodes: int, max_steps: int = 0):
        return make_evaluate(self.env, self.agent, num_episodes, self.num_seeds, max_steps or 100_000)

    def trace(self, hook: Any = None) -> None:
        """Evaluate one seed's init, one training iteration (every branch of it) and the evaluation
        policy on shapes alone (``jax.eval_shape``): what fails to trace fails here, uncompiled."""
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        runner = jax.eval_shape(make_init(self.env, self.agent), key)
        jax.eval_shape(make_iteration(self.env, self.agent, hook), runner, jnp.int32(0))
        jax.eval_shape(lambda s, o, k: self.agent.act(s, o, k, False), runner.agent, runner.obs, key)

    def close(self) -> None:
        pass
