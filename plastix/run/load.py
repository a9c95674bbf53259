"""One way to build a run's env and agent from its config, and to load a run directory back: config,
env, agent and the loop's carry from the newest checkpoint. Training, evaluation, the representation
analysis and sweeps all go through here."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from plastix.agents import AGENTS
from plastix.run.checkpoint import Checkpointer, ResumeError
from plastix.run.config import RunConfig, agent_config, build_env, load_yaml, plan
from plastix.run.loop import Runner, make_evaluate, make_init, shard_seeds


def build(config: RunConfig) -> tuple[Any, Any]:
    """``(env, agent)`` for a (validated) config."""
    env = build_env(config)
    agent = AGENTS[config.agent](env.spec, agent_config(config), plan(config).iterations, config.net)
    return env, agent


def seed_keys(config: RunConfig) -> jax.Array:
    """Seed i uses ``PRNGKey(config.seed + i)``."""
    return jnp.stack([jax.random.PRNGKey(config.seed + i) for i in range(config.seeds)])


def init_runners(env: Any, agent: Any, config: RunConfig) -> Runner:
    """One runner per seed, stacked. ``lax.map``, not ``vmap``: jaxlib's batched QR (orthogonal
    init) can deadlock on CPU when several host devices share its thread pool."""
    init = make_init(env, agent)
    return jax.block_until_ready(jax.jit(lambda keys: jax.lax.map(init, keys))(seed_keys(config)))


@dataclass(frozen=True)
class LoadedRun:
    """A run directory read back: the runner (all seeds) is that of checkpoint ``chunk``."""

    run_dir: Path
    config: RunConfig
    env: Any
    agent: Any
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
    like = init_runners(env, agent, config)
    ckpt = Checkpointer(run_dir / "checkpoints")
    try:
        restored = ckpt.restore_latest(like, lambda msg: print(msg, file=sys.stderr))
    finally:
        ckpt.close()
    if restored is None:
        raise ResumeError(f"load: {run_dir} has no intact checkpoint")
    return LoadedRun(run_dir, config, env, agent, restored[1], restored[0])


def final_params(run_dir: str | Path) -> Any:
    """The agent parameters of a run's newest checkpoint (host numpy arrays, seeds first)."""
    return jax.device_get(load(run_dir).runner.agent.params)


def evaluate_seeds(evaluate_fn: Any, agent_state: Any, config: RunConfig,
                   index: int) -> dict[str, list[float]]:
    """Per-seed mean return and success rate from ``evaluate_fn`` (`plastix.run.loop.make_evaluate`);
    ``index`` picks the evaluation keys (1: the final evaluation)."""
    keys = jax.vmap(lambda k: jax.random.fold_in(k, index))(seed_keys(config))
    out = jax.device_get(evaluate_fn(agent_state, shard_seeds(keys, config.seeds)))
    return {"eval_return": [float(x) for x in out["return"].mean(1)],
            "eval_success": [float(x) for x in out["success"].mean(1)]}


def evaluate(run_dir: str | Path, episodes: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Evaluate a run's newest checkpoint with the agent's evaluation policy: per-seed mean return
    and success rate over ``episodes`` (default: the run's ``eval_episodes``) fresh episodes."""
    run = load(run_dir)
    n = episodes or run.config.eval_episodes
    evaluate_fn = make_evaluate(run.env, run.agent, n, num_seeds=run.config.seeds)
    agent_state = shard_seeds(run.runner.agent, run.config.seeds)
    return {"step": run.step, "episodes": n,
            **evaluate_seeds(evaluate_fn, agent_state, run.config, 10_000 + seed)}
