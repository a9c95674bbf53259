"""The host-stepped training loop, for envs that run outside ``jit`` (MuJoCo, DeepMind Control, ALE,
Meta-World): numpy env steps between jitted calls of the agent.

Per env step there is one jitted call and one device -> host transfer (the actions): the call takes
the step's transitions, runs ``agent.learn`` (store, update at the replay ratio) and the plasticity
hook, and acts on the new observations for the next step, all vmapped over seeds with the agent state
donated (the replay buffer is updated in place). Agents whose iteration spans several steps (PPO) act
through a second jitted call between them. Seeds are separate batches of envs; the iteration index is
not batched, so schedules stay real branches, as in the on-device loop.

A chunk returns the same ``(Runner, IterationLog[seeds, iterations])`` as `plastix.run.loop`, so logging, the
NaN stop, checkpoints, evaluation and sweeps are shared. The runner's ``env_state`` is the host envs'
`snapshot` (simulator states, step and episode counters, seeds), taken at the chunk's end and restored
at the next chunk's start: with the replay inside the agent state, a run restored from a checkpoint
continues exactly as it would have. Envs that cannot save their state (ALE's vector env) are reset
afresh when a run is restored in a new process: agent, optimiser and replay continue exactly, the
episodes in flight at the checkpoint are lost (their partial returns are not logged).

Statistics and evaluation count the episodes the env reports in ``info["episode_end"]`` and sum
``info["score"]`` when it gives them (Atari's games and unclipped scores, where a lost life may be a
termination for the agent and rewards may be clipped), else terminations or truncations and rewards.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from plastix.agents.api import Transitions
from plastix.envs.api import SEED_AXIS
from plastix.run.episodes import evaluation_step, track
from plastix.run.loop import Runner, fused_probe, host_case
from plastix.run.row import IterationLog


class HostEnvError(RuntimeError):
    """A host env raised while stepping; the message names the env, the seed and the step."""


def _env_seeds(keys: jax.Array, num_envs: int) -> np.ndarray:
    """Per-env base seeds ``[seeds, num_envs]`` drawn from each seed's key."""
    bases = np.asarray(jax.vmap(lambda k: jax.random.randint(k, (), 0, 2**31 - 1))(keys))
    return np.array([[np.random.SeedSequence([int(b), j]).generate_state(1)[0] for j in range(num_envs)]
                     for b in bases], np.int64)


class HostLoop:
    """Runs ``agent`` on batches of a host env family (``env.vector(n)`` builds ``n`` envs)."""

    donates = True  # a chunk consumes its input runner's agent state

    def __init__(self, env: Any, agent: Any, num_seeds: int):
        self.env, self.agent, self.num_seeds = env, agent, num_seeds
        self.num_envs = agent.num_envs
        self._train_envs = None
        self._fresh = True  # the train envs have not been reset or restored yet
        self._eval_envs: dict[int, Any] = {}

        def act(state, obs, key):
            key, k_act = jax.random.split(key)
            action, aux = agent.act(state, obs, k_act)
            return action, aux, key

        self._act = jax.jit(jax.vmap(act))
        self._act_eval = jax.jit(jax.vmap(lambda s, o, k: agent.act(s, o, k, False)[0]))
        self._hook = None
        self._learn = None

    # ------------------------------------------------------------------ envs
    def _train(self) -> Any:
        if self._train_envs is None:
            self._train_envs = self.env.vector(self.num_seeds * self.num_envs)
        return self._train_envs

    def _split(self, x: np.ndarray, per_seed: int) -> np.ndarray:
        return x.reshape((self.num_seeds, per_seed) + x.shape[1:])

    def _merge(self, x: np.ndarray) -> np.ndarray:
        return x.reshape((-1,) + x.shape[2:])

    def _split_info(self, info: dict[str, Any], per_seed: int) -> dict[str, np.ndarray]:
        """The ``info`` entries episode statistics read (`plastix.run.episodes`), ``[seeds, per_seed]``."""
        return {k: self._split(np.asarray(info[k]), per_seed)
                for k in ("episode_end", "score", "success", "task") if k in info}

    def close(self) -> None:
        for envs in [self._train_envs, *self._eval_envs.values()]:
            if envs is not None:
                envs.close()
        self._train_envs, self._eval_envs = None, {}
        if hasattr(self.env, "close"):  # a family that holds its own evaluation envs
            self.env.close()

    # ------------------------------------------------------------------ runner
    def init(self, keys: jax.Array) -> Runner:
        """One runner per seed, stacked; the envs are reset with seeds drawn from ``keys``."""
        split = jax.vmap(lambda k: jax.random.split(k, 3))(keys)
        k_agent, k_env, k_run = split[:, 0], split[:, 1], split[:, 2]
        agent_state = jax.block_until_ready(jax.jit(lambda ks: jax.lax.map(self.agent.init, ks))(k_agent))
        envs = self._train()
        obs = envs.reset(self._merge(_env_seeds(k_env, self.num_envs)))
        self._fresh = False
        zeros = np.zeros((self.num_seeds, self.num_envs))
        return Runner(agent=agent_state, env_state=self._snapshot(),
                      obs=jnp.asarray(self._split(obs, self.num_envs)), key=k_run,
                      episode_return=zeros.astype(np.float32), episode_length=zeros.astype(np.int32),
                      env_steps=np.zeros(self.num_seeds, np.int32))

    def _snapshot(self) -> dict[str, np.ndarray]:
        envs = self._train()
        if not hasattr(envs, "snapshot"):
            return {}
        return {k: self._split(v, self.num_envs) for k, v in envs.snapshot().items()}

    def _sync(self, runner: Runner, start: int) -> Runner:
        """Set the train envs to the runner's: restore its snapshot, or, for envs that cannot save their
        state, reset them once in a new process (fresh episodes, seeded from the runner's keys)."""
        envs = self._train()
        if hasattr(envs, "restore"):
            envs.restore({k: self._merge(np.asarray(v)) for k, v in runner.env_state.items()})
        elif self._fresh:
            keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(runner.key, start)
            obs = envs.reset(self._merge(_env_seeds(keys, self.num_envs)))
            zeros = np.zeros((self.num_seeds, self.num_envs))
            runner = runner.replace(obs=jnp.asarray(self._split(obs, self.num_envs)),
                                    episode_return=zeros.astype(np.float32),
                                    episode_length=zeros.astype(np.int32))
        self._fresh = False
        return runner

    # ------------------------------------------------------------------ training
    def chunk(self, iterations: int, hook: Any = None, like: Runner | None = None):
        """``(Runner[seeds], start) -> (Runner[seeds], IterationLog[seeds, iterations])``, compiled on first
        use."""
        if self._learn is None or self._hook is not hook:
            self._hook, self._learn = hook, self._make_learn(hook)
        return lambda runner, start: self._run(runner, int(start), iterations)

    def _make_learn(self, hook: Any):
        agent = self.agent

        def learn(state, steps, last_obs, key, index, case):
            update, when = case
            transitions = jax.tree.map(lambda *x: jnp.stack(x), *steps)
            key, k_learn, k_hook, k_act = jax.random.split(key, 4)
            state, metrics = agent.learn(state, transitions, last_obs, k_learn, index, update,
                                         **fused_probe(hook, index, when))
            if hook is not None:
                state, extra = hook(state, transitions, last_obs, k_hook, index, when)
                metrics = {**metrics, **extra}
            action, aux = agent.act(state, last_obs, k_act)
            return state, metrics, action, aux, key

        # one compiled call per case (update? measure? reset?), known here before the call, so each runs
        # as straight-line code: XLA's CPU runtime runs networks inside a conditional ~5x slower
        compiled = {}

        def for_case(case):
            if case not in compiled:
                compiled[case] = jax.jit(jax.vmap(lambda *a: learn(*a, case), in_axes=(0, 0, 0, 0, None),
                                                  axis_name=SEED_AXIS),
                                         donate_argnums=(0,))
            return compiled[case]

        return for_case

    def trace(self, hook: Any = None) -> tuple[str, ...]:
        """Evaluate one seed's init, acting, one updating iteration (measuring and resetting as the hook
        can) and the evaluation policy on shapes alone (``jax.eval_shape``), without building an env.
        Returns the keys of the values an iteration logs."""
        agent, n = self.agent, self.num_envs
        key = jax.ShapeDtypeStruct((2,), jnp.uint32)
        state = jax.eval_shape(agent.init, key)
        space = self.env.spec.observation_space
        obs = jax.ShapeDtypeStruct((n,) + tuple(space.shape), space.dtype)
        action, aux = jax.eval_shape(lambda s, o, k: agent.act(s, o, k), state, obs, key)
        jax.eval_shape(lambda s, o, k: agent.act(s, o, k, False), state, obs, key)
        step = Transitions(obs=obs, action=action, reward=jax.ShapeDtypeStruct((n,), jnp.float32),
                           terminated=jax.ShapeDtypeStruct((n,), bool),
                           truncated=jax.ShapeDtypeStruct((n,), bool), next_obs=obs, aux=aux)
        learn = self._make_learn(hook)
        case = (True, None if hook is None else hook.when(True, 0))
        batched = lambda x: jax.ShapeDtypeStruct((self.num_seeds,) + x.shape, x.dtype)  # noqa: E731
        args = jax.tree.map(batched, (state, [step] * agent.steps_per_iteration, obs, key))
        return tuple(jax.eval_shape(learn(case), *args, jnp.int32(0))[1])

    def _run(self, runner: Runner, start: int, iterations: int) -> tuple[Runner, IterationLog]:
        agent, envs = self.agent, self._train()
        seeds, n, steps_per = self.num_seeds, self.num_envs, agent.steps_per_iteration
        runner = self._sync(runner, start)
        state, key, obs = runner.agent, runner.key, jnp.asarray(runner.obs)
        ep_return = np.array(runner.episode_return, np.float32)
        ep_length = np.array(runner.episode_length, np.int32)
        num_tasks = len(self.env.spec.task_names)
        sums: dict[str, np.ndarray] = {}
        learned, updated = [], np.zeros((seeds, iterations), bool)
        action, aux, key = self._act(state, obs, key)
        for i in range(iterations):
            steps = []
            for t in range(steps_per):
                if t:
                    action, aux, key = self._act(state, obs, key)
                actions = np.asarray(action)
                done_before = int(runner.env_steps[0]) + (i * steps_per + t) * n
                try:
                    next_obs, reward, terminated, truncated, info = envs.step(self._merge(actions))
                except Exception as err:  # a simulator error ends the run, naming where
                    raise HostEnvError(
                        f"env {self.env.env_id} raised at env step {done_before + n:,} per seed: "
                        f"{type(err).__name__}: {err}") from err
                reward, terminated, truncated = (self._split(x, n) for x in (reward, terminated, truncated))
                ep_return, ep_length, ended = track(np, ep_return, ep_length, reward, terminated, truncated,
                                                    self._split_info(info, n), num_tasks)
                for k, v in ended.items():
                    sums.setdefault(k, np.zeros((seeds, iterations) + v.shape[1:], np.float32))[:, i] += v
                next_dev = jnp.asarray(self._split(next_obs, n))
                final = next_dev if not (terminated | truncated).any() else \
                    jnp.asarray(self._split(info["final_obs"], n))
                steps.append(Transitions(obs=obs, action=action, reward=reward, terminated=terminated,
                                         truncated=truncated, next_obs=final, aux=aux))
                obs = next_dev
            index = np.int32(start + i)
            case = host_case(agent, self._hook, index)
            state, metrics, action, aux, key = self._learn(case)(state, steps, obs, key, index)
            learned.append(metrics)
            updated[:, i] = case[0]
        learned = jax.device_get(learned)
        log = IterationLog(episodes=sums, updated=updated,
                           values=jax.tree.map(lambda *m: np.stack(m, 1), *learned) if learned else {})
        runner = Runner(agent=state, env_state=self._snapshot(), obs=obs, key=key, episode_return=ep_return,
                        episode_length=ep_length,
                        env_steps=np.asarray(runner.env_steps) + iterations * steps_per * n)
        return runner, log

    # ------------------------------------------------------------------ evaluation
    def evaluator(self, num_episodes: int, max_steps: int = 0, like: tuple | None = None):
        """``(agent_state[seeds], keys[seeds]) -> {return, success}[seeds, episodes]``: ``num_episodes``
        fresh envs per seed, each run until its first episode ends (or ``max_steps``; 0: the env's
        limit), with the evaluation policy, compiled on first use (``like`` is the device loop's). A
        family with its own protocol (``env.evaluate``: Meta-World's) runs it for each seed instead:
        ``{return, success}[seeds, tasks]`` and ``per_task``."""
        if hasattr(self.env, "evaluate"):
            return lambda agent_state, keys: self._benchmark_eval(agent_state, keys, num_episodes)
        max_steps = max_steps or self.env.spec.max_steps

        def evaluate(agent_state, keys):
            if num_episodes not in self._eval_envs:
                self._eval_envs[num_episodes] = self.env.vector(self.num_seeds * num_episodes)
            envs = self._eval_envs[num_episodes]
            obs = self._split(envs.reset(self._merge(_env_seeds(keys, num_episodes))), num_episodes)
            ret = np.zeros((self.num_seeds, num_episodes), np.float32)
            tally = (ret, np.zeros_like(ret, bool), np.zeros_like(ret, bool))
            for t in range(max_steps):
                step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t)
                action = np.asarray(self._act_eval(agent_state, jnp.asarray(obs), step_keys))
                obs, reward, term, trunc, info = envs.step(self._merge(action))
                obs = self._split(obs, num_episodes)
                reward, term, trunc = (self._split(x, num_episodes) for x in (reward, term, trunc))
                tally = evaluation_step(np, tally, reward, term, trunc, self._split_info(info, num_episodes))
                if tally[-1].all():
                    break
            return {"return": tally[0], "success": tally[1]}

        return evaluate

    def _benchmark_eval(self, agent_state: Any, keys: jax.Array, num_episodes: int) -> dict[str, Any]:
        """The env family's own evaluation, seed by seed, with each seed's evaluation policy."""
        m = self.env.eval_num_envs()
        base = _env_seeds(keys, 1)[:, 0]
        out = []
        for s in range(self.num_seeds):
            calls = itertools.count()  # a fresh evaluation key per policy call

            def act(obs: np.ndarray, s: int = s, calls: Any = calls) -> np.ndarray:
                batch = np.zeros((self.num_seeds, m) + obs.shape[1:], np.float32)
                batch[s] = obs
                step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, next(calls))
                return np.asarray(self._act_eval(agent_state, jnp.asarray(batch), step_keys))[s]

            out.append(self.env.evaluate(act, num_episodes, int(base[s])))
        names = {k: list(out[0][k]) for k in ("return", "success")}
        per_task = {f"{k}/{name}": [o[k][name] for o in out] for k in names for name in names[k]}
        return {k: np.array([[o[k][name] for name in names[k]] for o in out]) for k in names} | \
            {"per_task": per_task}
