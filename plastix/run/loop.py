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
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from plastix.agents.api import Transitions, loops_slow
from plastix.envs.api import SEED_AXIS
from plastix.run.episodes import evaluation_step, track
from plastix.run.row import IterationLog


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


def make_iteration(env: Any, agent: Any, hook: Any = None, case: tuple | None = None):
    """``(Runner, iteration) -> (Runner, IterationLog)``: step every env ``agent.steps_per_iteration`` times,
    hand the transitions to ``agent.learn``, then to ``hook(state, transitions, last_obs, key,
    iteration) -> (state, metrics)`` when given (plasticity probes and resets; an agent that fuses the
    probe into its update gets the hook's ``measure`` in ``learn``). ``case``: the iteration's
    `host_case` when the host decided it (straight-line code, no conditional around a network); None
    decides in the graph.

    The log holds sums over the episodes that ended in this iteration (`plastix.run.episodes.track`:
    return, length, count, successes and per-task sums when the env reports them), whether it updated,
    and the agent's and the hook's metrics.
    """
    step_env = functools.partial(env.step_batch, final_obs=agent.final_obs)
    num_envs = agent.num_envs

    def env_step(runner: Runner, _):
        key, k_act, k_env = jax.random.split(runner.key, 3)
        action, aux = agent.act(runner.agent, runner.obs, k_act)
        obs, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, num_envs), runner.env_state, action
        )
        ep_return, ep_length, ended = track(jnp, runner.episode_return, runner.episode_length, reward,
                                            terminated, truncated, info, len(env.spec.task_names))
        transition = Transitions(obs=runner.obs, action=action, reward=reward, terminated=terminated,
                                 truncated=truncated, next_obs=info["final_obs"], aux=aux)
        runner = runner.replace(env_state=env_state, obs=obs, key=key, episode_return=ep_return,
                                episode_length=ep_length)
        return runner, (transition, ended)

    update, when = (None, None) if case is None else case

    def iteration(runner: Runner, index: jax.Array):
        runner, (transitions, ended) = jax.lax.scan(env_step, runner, None, agent.steps_per_iteration)
        key, k_learn = jax.random.split(runner.key)
        agent_state, metrics = agent.learn(runner.agent, transitions, runner.obs, k_learn, index, update,
                                           **fused_probe(hook, index, when))
        if hook is not None:
            key, k_hook = jax.random.split(key)
            agent_state, extra = hook(agent_state, transitions, runner.obs, k_hook, index, when)
            metrics = {**metrics, **extra}
        runner = runner.replace(
            agent=agent_state, key=key,
            env_steps=runner.env_steps + agent.steps_per_iteration * num_envs,
        )
        return runner, IterationLog(episodes=jax.tree.map(lambda x: x.sum(0), ended),
                                    updated=agent.schedule(index)[0], values=metrics)

    return iteration


def fused_probe(hook: Any, index: Any, when: Any = None) -> dict[str, Any]:
    """``learn``'s extra keyword for an agent that measures inside its update: ``{"measure": ...}`` from
    the plasticity hook when it fuses, else nothing (agents without ``fuses_probe`` never see it)."""
    measure = None if hook is None else hook.measure_for(index, when)
    return {} if measure is None else {"measure": measure}


def host_case(agent: Any, hook: Any, index: int) -> tuple[bool, tuple[bool, bool] | None]:
    """What iteration ``index`` does, decided on the host: ``(update, (measure, reset))`` from the
    agent's schedule and the hook's cadence (None without a hook). Both loops compile one program per
    case, so each runs as straight-line code."""
    updated, done = (np.asarray(x) for x in agent.schedule(np.int32(index)))
    return bool(updated), None if hook is None else hook.when(bool(updated), int(done))


def make_chunk(env: Any, agent: Any, iterations: int, num_seeds: int = 1, hook: Any = None):
    """Jitted ``(Runner[seeds], start, count) -> (Runner[seeds], IterationLog[seeds, iterations])``: ``count``
    (at most ``iterations``) iterations from global index ``start``.

    ``start`` and ``count`` are not batched over seeds, so the agent's schedules (update period, target
    updates, plasticity cadence) stay real branches under ``vmap``. The loop is a while loop of ``count``
    trips, so one compiled program also runs a run's shorter last chunk (the metrics of the iterations
    it skips are zeros).
    With several devices and a seed count they divide, each device runs its own seeds (``shard_map``):
    seeds never communicate.
    """
    step = make_iteration(env, agent, hook)

    def chunk(runner: Runner, start: jax.Array, count: jax.Array):
        shapes = jax.eval_shape(step, runner, jnp.int32(0))[1]
        blank = jax.tree.map(lambda s: jnp.zeros((iterations,) + s.shape, s.dtype), shapes)

        def body(i, carry):
            runner, out = carry
            runner, metrics = step(runner, start + i)
            return runner, jax.tree.map(lambda o, m: o.at[i].set(m), out, metrics)

        return jax.lax.fori_loop(0, count, body, (runner, blank))

    return jax.jit(_per_device(jax.vmap(chunk, in_axes=(0, None, None), axis_name=SEED_AXIS), num_seeds,
                               replicated=2))


class HostDispatch:
    """A chunk as a host loop over one compiled iteration per call, for networks whose gradients XLA
    runs several times slower inside a loop or a conditional (`plastix.agents.api.loops_slow`:
    convolutions on CPU): each iteration's case (`host_case`: update? measure? reset?) is decided on the
    host and compiled once, so every call is straight-line code. The same ``(Runner[seeds], start) ->
    (Runner[seeds], IterationLog[seeds, iterations])`` as `make_chunk`, from the same `make_iteration`.

    ``per_seed`` (the default on one device): a call per seed of the unbatched iteration, so a seed's run
    is the same as alone; as fast as one vmapped call for the CNN agents (`bench/conv_agents.py`).
    Otherwise one call vmapped over seeds (sharded when several devices share them; `plastix.nets.per_seed`
    keeps its convolutions seed by seed). The runner is split (or copied) once per chunk, then donated
    call to call (the replay updated in place), so the chunk's input stays intact. Compiled iterations
    serve every chunk length."""

    def __init__(self, env: Any, agent: Any, num_seeds: int, hook: Any = None, per_seed: bool | None = None):
        self.env, self.agent, self.num_seeds, self.hook = env, agent, num_seeds, hook
        self.per_seed = seed_mesh(num_seeds) is None if per_seed is None else per_seed
        self._jitted: dict[tuple, Any] = {}
        self._compiled: dict[tuple, Any] = {}
        self._copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))

    def _fn(self, case: tuple):
        if case in self._compiled:
            return self._compiled[case]
        if case not in self._jitted:
            step = make_iteration(self.env, self.agent, self.hook, case)
            if not self.per_seed:
                step = _per_device(jax.vmap(step, in_axes=(0, None), axis_name=SEED_AXIS), self.num_seeds,
                                   replicated=1)
            self._jitted[case] = jax.jit(step, donate_argnums=(0,))
        return self._jitted[case]

    def compile(self, iterations: int, like: Runner) -> None:
        """Compile, for runners like ``like``, the cases of the first ``iterations`` iterations and an
        updating one (others compile on first use)."""
        cases = {host_case(self.agent, self.hook, i) for i in range(iterations)}
        cases.add((True, None if self.hook is None else self.hook.when(True, 1)))
        if self.per_seed:
            like = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x)[1:], x.dtype), like)
        for case in cases - set(self._compiled):
            self._compiled[case] = self._fn(case).lower(like, np.int32(0)).compile()

    def chunk(self, iterations: int):
        def run(runner: Runner, start: Any) -> tuple[Runner, dict[str, np.ndarray]]:
            start = int(start)
            if self.per_seed:  # each seed's slices are new buffers, so donating them spares the input
                runners = [jax.tree.map(lambda x, i=i: x[i], runner) for i in range(self.num_seeds)]
            else:
                runners = [self._copy(runner)]
            out = [[] for _ in runners]
            for index in range(start, start + iterations):
                fn = self._fn(host_case(self.agent, self.hook, index))
                for i, r in enumerate(runners):
                    runners[i], metrics = fn(r, np.int32(index))
                    out[i].append(metrics)
            out = jax.device_get(out)
            if not self.per_seed:  # one call's logs are [seeds]
                return runners[0], jax.tree.map(lambda *m: np.stack(m, 1), *out[0])
            logs = jax.tree.map(lambda *s: np.stack(s), *[jax.tree.map(lambda *m: np.stack(m), *seed)
                                                           for seed in out])
            return jax.tree.map(lambda *x: jnp.stack(x), *runners), logs

        return run


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
        init = (jnp.zeros((), jnp.int32), obs, env_state, (jnp.zeros(num_episodes), zeros, zeros))

        def body(carry):
            t, obs, env_state, tally = carry
            k_act, k_env = jax.random.split(jax.random.fold_in(k_run, t))
            action, _ = agent.act(agent_state, obs, k_act, False)
            obs, env_state, reward, term, trunc, info = step_env(
                jax.random.split(k_env, num_episodes), env_state, action
            )
            return t + 1, obs, env_state, evaluation_step(jnp, tally, reward, term, trunc, info)

        def running(carry):
            return (carry[0] < max_steps) & ~carry[-1][-1].all()

        ret, success, _ = jax.lax.while_loop(running, body, init)[-1]
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

    def __init__(self, env: Any, agent: Any, num_seeds: int, dispatch: bool | None = None):
        """``dispatch``: run chunks as `HostDispatch` (True) or one scan (False); None: where
        `loops_slow` says the agent's networks need it (convolutions on CPU)."""
        self.env, self.agent, self.num_seeds = env, agent, num_seeds
        if dispatch is None:
            dispatch = loops_slow(*((net.module, net.example) for net in agent.plastic_nets().values()))
        self.dispatch = dispatch
        self._dispatcher: HostDispatch | None = None
        self._programs: dict[tuple[int, Any], Any] = {}  # (iterations, hook) -> compiled make_chunk
        self._background: ThreadPoolExecutor | None = None

    def init(self, keys: jax.Array) -> Runner:
        """One runner per seed, stacked. ``lax.map``, not ``vmap``: jaxlib's batched QR (orthogonal
        init) can deadlock on CPU when several host devices share its thread pool."""
        init = make_init(self.env, self.agent)
        return shard_seeds(jax.block_until_ready(jax.jit(lambda ks: jax.lax.map(init, ks))(keys)),
                           self.num_seeds)

    def chunk(self, iterations: int, hook: Any = None, like: Runner | None = None):
        """``(Runner[seeds], start) -> (Runner[seeds], IterationLog[seeds, iterations])``: `make_chunk` (or
        `HostDispatch`'s chunk when ``dispatch``), compiled ahead of time for runners like ``like``. A
        chunk no longer than one compiled before for the same hook runs that program."""
        if self.dispatch:
            if self._dispatcher is None or self._dispatcher.hook is not hook:
                self._dispatcher = HostDispatch(self.env, self.agent, self.num_seeds, hook)
            if like is not None:
                self._dispatcher.compile(iterations, like)
            return self._dispatcher.chunk(iterations)
        longer = [n for (n, h) in self._programs if h is hook and n >= iterations]
        if longer:
            length = min(longer)
            program = self._programs[length, hook]
        else:
            length = iterations
            program = make_chunk(self.env, self.agent, iterations, self.num_seeds, hook)
            if like is not None:
                program = program.lower(like, np.int32(0), np.int32(iterations)).compile()
                self._programs[length, hook] = program

        def run(runner: Runner, start: Any) -> tuple[Runner, dict[str, jax.Array]]:
            runner, metrics = program(runner, np.int32(start), np.int32(iterations))
            if length > iterations:
                metrics = jax.tree.map(lambda m: m[:, :iterations], metrics)
            return runner, metrics

        return run

    def evaluator(self, num_episodes: int, max_steps: int = 0, like: tuple | None = None):
        """`make_evaluate`'s function; with ``like`` (agent state and keys like the calls'), compiled in a
        background thread while training goes on: its first call waits for the compile."""
        fn = make_evaluate(self.env, self.agent, num_episodes, self.num_seeds, max_steps or 100_000)
        if like is None:
            return fn
        if self._background is None:
            self._background = ThreadPoolExecutor(1, thread_name_prefix="plastix-compile")
        compiled = self._background.submit(lambda: fn.lower(*like).compile())
        return lambda agent_state, keys: compiled.result()(agent_state, keys)

    def trace(self, hook: Any = None) -> tuple[str, ...]:
        """Evaluate one seed's init, one training iteration (every branch of it) and the evaluation
        policy on shapes alone (``jax.eval_shape``): what fails to trace fails here, uncompiled. Returns
        the keys of the values an iteration logs."""
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        runner = jax.eval_shape(make_init(self.env, self.agent), key)
        log = jax.eval_shape(make_iteration(self.env, self.agent, hook), runner, jnp.int32(0))[1]
        jax.eval_shape(lambda s, o, k: self.agent.act(s, o, k, False), runner.agent, runner.obs, key)
        return tuple(log.values)

    def close(self) -> None:
        if self._background is not None:
            self._background.shutdown()
