"""One way to build a run's env and agent from its config, and to load a run directory back: config,
env, agent and the loop's carry from the newest checkpoint. Training, evaluation, the representation
analysis and sweeps all go through here."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from plastix.agents import AGENTS
from plastix.fields import undeclared
from plastix.plasticity.hook import make_hook
from plastix.run.checkpoint import Checkpointer, ResumeError
from plastix.run.config import ConfigError, RunConfig, agent_config, build_env, load_yaml, plan, to_dict
from plastix.run.host_loop import HostLoop
from plastix.run.loop import DeviceLoop, Runner, shard_seeds
from plastix.run.row import run_fields


def build(config: RunConfig) -> tuple[Any, Any]:
    """``(env, agent)`` for a (validated) config."""
    env = build_env(config)
    agent = AGENTS[config.agent](env.spec, agent_config(config), plan(config).iterations, config.net)
    return env, agent


def check_program(config: RunConfig) -> None:
    """`validate`'s complement: build the run's env, agent and loop with `traced_program`, so a
    combination that cannot run fails before anything compiles (``plastix train --check`` runs this)."""
    traced_program(config)[2].close()


def program_key(config: RunConfig) -> str:
    """What a run's traced program depends on: its config but the seed and where it is written, and for
    a host env its spec in place of its id (host envs are stepped outside the program, so games with the
    same observations and actions share one). Runs with one key trace alike (`plastix sweep --check`
    traces each key once)."""
    data = {k: v for k, v in to_dict(config).items() if k not in ("seed", "out_dir", "name", "progress")}
    spec = build_env(config).spec
    if not spec.on_device:
        data["env"] = repr(dataclasses.replace(spec, env_id=""))
    return json.dumps(data, sort_keys=True, default=str)


def traced_program(config: RunConfig) -> tuple[Any, Any, DeviceLoop | HostLoop, Any]:
    """``(env, agent, loop, plasticity hook)`` of a (validated) config, its whole program traced on shapes
    alone (agent init, one iteration of the loop with the hook, the evaluation policy: `DeviceLoop.trace` /
    `HostLoop.trace`; building the agent and the loop traces its networks too); a failure is one
    `ConfigError` line naming the field (plastix's own checks) or the env x agent combination, and
    nothing is left open."""
    loop = None
    try:
        env, agent = build(config)
        loop = make_loop(env, agent, config.seeds)
        hook = make_hook(agent, config.plasticity)
        missing = undeclared(run_fields(agent, hook), loop.trace(hook))
        if missing:
            raise ValueError(f"{missing[0]}: an iteration logs it but no field declares it (declare it "
                             f"beside the code that computes it, e.g. {type(agent).__name__}.fields)")
        return env, agent, loop, hook
    except ValueError as err:
        if loop is not None:
            loop.close()
        raise ConfigError(str(err).splitlines()[0]) from None
    except Exception as err:  # noqa: BLE001  any other tracing failure, in one line
        if loop is not None:
            loop.close()
        first = str(err).splitlines()[0] if str(err) else ""
        raise ConfigError(f"agent: {config.agent} with this network does not run on {config.env} "
                          f"({type(err).__name__}: {first})") from None


def seed_keys(config: RunConfig) -> jax.Array:
    """Seed index i of a run with ``seed`` s uses ``fold_in(PRNGKey(s), i)``: no two (run seed, index)
    pairs share a stream, so runs with neighbouring ``seed`` values are independent (``PRNGKey(s + i)``
    would give ``--seed 1`` three of ``--seed 0``'s four streams)."""
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(jax.random.PRNGKey(config.seed),
                                                            jnp.arange(config.seeds))


def make_loop(env: Any, agent: Any, num_seeds: int) -> DeviceLoop | HostLoop:
    """The loop that runs ``env``: on device for JAX envs, host-stepped for host envs."""
    return (DeviceLoop if env.spec.on_device else HostLoop)(env, agent, num_seeds)


def init_runners(loop: DeviceLoop | HostLoop, config: RunConfig) -> Runner:
    """One runner per seed, stacked (placed over devices when several share the seeds)."""
    return loop.init(seed_keys(config))


@dataclass(frozen=True)
class LoadedRun:
    """A run directory read back: the runner (all seeds) is that of checkpoint ``chunk``."""

    run_dir: Path
    config: RunConfig
    env: Any
    agent: Any
    loop: DeviceLoop | HostLoop
    runner: Runner
    chunk: int

    @property
    def step(self) -> int:
        """Env steps per seed the checkpoint had trained."""
        return plan(self.config).steps_after(self.chunk - 1) if self.chunk else 0


def load(run_dir: str | Path) -> LoadedRun:
    """Config, env, agent and the newest checkpoint of ``run_dir``; `ResumeError` when it has none."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise ResumeError(f"load: {run_dir} has no config.yaml, so it is not a plastix run")
    config = load_yaml(run_dir / "config.yaml")
    env, agent = build(config)
    loop = make_loop(env, agent, config.seeds)
    like = init_runners(loop, config)
    ckpt = Checkpointer(run_dir / "checkpoints", read_only=True)
    try:
        restored = ckpt.restore_latest(like, lambda msg: print(msg, file=sys.stderr))
    finally:
        ckpt.close()
    if restored is None:
        raise ResumeError(f"load: {run_dir} has no intact checkpoint")
    return LoadedRun(run_dir, config, env, agent, loop, restored[1], restored[0])


def final_params(run_dir: str | Path) -> dict[str, Any]:
    """The parameters of every network of a run's newest checkpoint, by the agent's network names
    (``plastic_nets``: PPO / DQN one, SAC actor and critic), as host numpy arrays, seeds first."""
    run = load(run_dir)
    run.loop.close()
    state = run.runner.agent
    nets = run.agent.plastic_nets()
    return jax.device_get({name: getattr(state, net.params) for name, net in nets.items()})


def eval_keys(config: RunConfig, index: int) -> jax.Array:
    """The keys ``[seeds]`` of evaluation ``index`` (1: the final one), placed as the seeds are."""
    keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(seed_keys(config))
    return shard_seeds(keys, config.seeds)


def evaluate_seeds(evaluate_fn: Any, agent_state: Any, config: RunConfig,
                   index: int) -> dict[str, list[float]]:
    """Per-seed mean return and success rate from ``evaluate_fn`` (a loop's ``evaluator``);
    ``index`` picks the evaluation keys (1: the final evaluation)."""
    out = evaluate_fn(agent_state, eval_keys(config, index))
    per_task = out.pop("per_task", {})  # a benchmark's own protocol: per-task rates, by task name
    out = jax.device_get(out)
    return {"eval_return": [float(x) for x in out["return"].mean(1)],
            "eval_success": [float(x) for x in out["success"].mean(1)],
            **{f"eval_{k}": [float(x) for x in v] for k, v in per_task.items()}}


def evaluate(run_dir: str | Path, episodes: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Evaluate a run's newest checkpoint with the agent's evaluation policy: per-seed mean return
    and success rate over ``episodes`` (default: the run's ``eval_episodes``) fresh episodes."""
    if episodes is not None and (isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1):
        raise ConfigError(f"episodes: must be a positive number of episodes per seed, got {episodes!r}")
    run = load(run_dir)
    n = run.config.eval_episodes if episodes is None else episodes
    agent_state = shard_seeds(run.runner.agent, run.config.seeds)
    evaluate_fn = run.loop.evaluator(n, run.config.eval_max_steps)
    try:
        return {"step": run.step, "episodes": n,
                **evaluate_seeds(evaluate_fn, agent_state, run.config, 10_000 + seed)}
    finally:
        run.loop.close()
