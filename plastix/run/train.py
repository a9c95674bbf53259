"""Config in, run directory out: validate, build, train in chunks, log, checkpoint, evaluate, plot.

A run directory holds ``config.yaml``, ``metrics.jsonl``, ``tb/`` (TensorBoard), ``checkpoints/``,
``summary.json`` and ``plots/learning_curve.png``. `resume` continues a killed run from its last
checkpoint; because the checkpoint is the loop's whole carry, the result equals an uninterrupted run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from plastix.agents import AGENTS
from plastix.plasticity.hook import make_hook
from plastix.run.checkpoint import Checkpointer, ResumeError
from plastix.run.config import RunConfig, build_env, load_yaml, save_yaml, validate
from plastix.run.logging import MetricsLog, ProgressBar
from plastix.run.loop import make_chunk, make_evaluate, make_init, shard_seeds


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN / inf loss; the last finite state was checkpointed."""


@dataclass(frozen=True)
class Plan:
    """How a step budget splits into updates and chunks."""

    batch: int  # env steps per update per seed
    updates_per_chunk: int
    num_chunks: int

    @property
    def num_updates(self) -> int:
        return self.updates_per_chunk * self.num_chunks

    @property
    def steps_per_chunk(self) -> int:
        return self.updates_per_chunk * self.batch

    @property
    def total_steps(self) -> int:
        return self.num_updates * self.batch


def plan(config: RunConfig) -> Plan:
    """Updates are whole rollouts and chunks whole updates, so the budget rounds up to a chunk."""
    batch = config.ppo.batch_size
    updates = math.ceil(config.total_steps / batch)
    per_chunk = min(updates, max(1, round(config.log_every / batch)))
    return Plan(batch, per_chunk, math.ceil(updates / per_chunk))


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    eval_success: list[float]  # per seed
    eval_return: list[float]  # per seed
    plot: Path


def _seed_keys(config: RunConfig) -> jax.Array:
    return jnp.stack([jax.random.PRNGKey(config.seed + i) for i in range(config.seeds)])


def _init_runners(env: Any, agent: Any, config: RunConfig) -> Any:
    """One runner per seed, stacked. ``lax.map``, not ``vmap``: jaxlib's batched QR (orthogonal
    init) can deadlock on CPU when several host devices share its thread pool."""
    init = make_init(env, agent, config.ppo.num_envs)
    return jax.block_until_ready(jax.jit(lambda keys: jax.lax.map(init, keys))(_seed_keys(config)))


def _new_run_dir(config: RunConfig) -> Path:
    name = config.name or f"{config.env}_{config.agent}_{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(config.out_dir) / name
    if (run_dir / "config.yaml").exists():
        raise FileExistsError(
            f"name: run directory {run_dir} already holds a run; pick another --name or resume it "
            f"with --resume {run_dir}"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


EPISODE_SUMS = ("return_sum", "success_sum", "length_sum", "episodes")


def _row(chunk: int, p: Plan, metrics: dict[str, np.ndarray], seconds: float,
         seeds: int) -> dict[str, Any]:
    """One metrics.jsonl line from a chunk's per-(seed, update) metrics."""
    episodes = metrics["episodes"].sum(1)
    per_seed = lambda k: [
        float(s / e) if e else None for s, e in zip(metrics[k].sum(1), episodes, strict=True)
    ]
    row: dict[str, Any] = {
        "chunk": chunk,
        "step": (chunk + 1) * p.steps_per_chunk,
        "episode_return": per_seed("return_sum"),
        "success_rate": per_seed("success_sum"),
        "episode_length": per_seed("length_sum"),
        "episodes": [int(e) for e in episodes],
        "steps_per_s": seeds * p.steps_per_chunk / seconds,
    }
    for k, v in metrics.items():  # the agent's own metrics (losses, routing, activity), averaged
        if k in EPISODE_SUMS:
            continue
        measured = np.isfinite(v) if k.startswith("activity/") else np.ones_like(v, bool)
        if measured.any():  # activity is measured every few updates; NaN elsewhere
            row[k] = float(np.mean(np.asarray(v)[measured]))
    returns = [r for r in row["episode_return"] if r is not None]
    row["episode_return_mean"] = float(np.mean(returns)) if returns else None
    return row


def _first_nonfinite(metrics: dict[str, np.ndarray]) -> int | None:
    """Index of the first update (within a chunk) whose loss is NaN or inf, over all seeds."""
    bad = ~np.isfinite(metrics["loss/total"]).all(0)
    return int(np.argmax(bad)) if bad.any() else None


def run(config: RunConfig, run_dir: Path | None = None, resuming: bool = False) -> TrainResult:
    """Train ``config`` into ``run_dir`` (a new directory unless ``resuming``)."""
    from plastix.analysis.plots import activity_curves, learning_curve

    validate(config)
    p = plan(config)
    env = build_env(config)
    agent = AGENTS[config.agent](env.spec, config.ppo, p.num_updates, config.net)
    if run_dir is None:
        run_dir = _new_run_dir(config)
    if not resuming:
        save_yaml(config, run_dir / "config.yaml")

    runner = shard_seeds(_init_runners(env, agent, config), config.seeds)
    ckpt = Checkpointer(run_dir / "checkpoints")
    start = 0
    if resuming and ckpt.latest() is not None:
        start = ckpt.latest()
        runner = ckpt.restore(start, runner)
    log = MetricsLog(run_dir, resume_chunk=start, resume_step=start * p.steps_per_chunk)
    example = jnp.zeros((1,) + tuple(env.spec.observation_space.shape), env.spec.observation_space.dtype)
    hook = make_hook(agent, config.plasticity, example)
    chunk_fn = make_chunk(env, agent, config.ppo.num_envs, config.ppo.num_steps,
                          p.updates_per_chunk, config.seeds, hook)
    t = time.perf_counter()
    chunk_fn = chunk_fn.lower(runner).compile()
    compile_s = time.perf_counter() - t

    bar = ProgressBar(p.total_steps, start * p.steps_per_chunk, config.progress)
    try:
        for chunk in range(start, p.num_chunks):
            t = time.perf_counter()
            next_runner, metrics = chunk_fn(runner)
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - t
            bad = _first_nonfinite(metrics)
            if bad is not None:
                ckpt.save(chunk, runner)
                step = (chunk * p.updates_per_chunk + bad + 1) * p.batch
                raise NonFiniteLossError(
                    f"loss became NaN/inf at update {chunk * p.updates_per_chunk + bad + 1} "
                    f"(env step {step:,} per seed); stopped, and saved the last finite state "
                    f"(step {chunk * p.steps_per_chunk:,}) as checkpoint {chunk} in {run_dir}"
                )
            runner = next_runner
            row = _row(chunk, p, metrics, seconds, config.seeds)
            log.write(row)
            ckpt.save(chunk + 1, runner)
            bar.update(row["step"], row["steps_per_s"], row["episode_return_mean"])
    finally:
        bar.close()
        log.close()
        ckpt.close()

    evaluate = make_evaluate(env, agent, config.eval_episodes, num_seeds=config.seeds)
    eval_keys = shard_seeds(jax.vmap(lambda k: jax.random.fold_in(k, 1))(_seed_keys(config)),
                            config.seeds)
    ev = jax.device_get(evaluate(runner.agent, eval_keys))
    result = TrainResult(
        run_dir=run_dir,
        steps=p.total_steps,
        eval_success=[float(x) for x in ev["success"].mean(1)],
        eval_return=[float(x) for x in ev["return"].mean(1)],
        plot=run_dir / "plots" / "learning_curve.png",
    )
    (run_dir / "summary.json").write_text(json.dumps({
        "env": config.env, "agent": config.agent, "steps_per_seed": p.total_steps,
        "seeds": config.seeds, "compile_s": compile_s, "eval_episodes": config.eval_episodes,
        "eval_success": result.eval_success, "eval_return": result.eval_return,
    }, indent=2))
    learning_curve(run_dir, result.plot)
    if config.plasticity.metric_names or config.plasticity.reset != "none":
        activity_curves(run_dir, run_dir / "plots" / "activity.png")
    return result


def train(config: RunConfig) -> TrainResult:
    """Start a new run."""
    return run(config)


def resume(run_dir: str | Path) -> TrainResult:
    """Continue the run in ``run_dir`` from its last checkpoint (from the start if it has none)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResumeError(f"resume: {run_dir} does not exist")
    if not (run_dir / "config.yaml").is_file():
        raise ResumeError(f"resume: {run_dir} has no config.yaml, so it is not a plastix run")
    return run(load_yaml(run_dir / "config.yaml"), run_dir, resuming=True)


def final_params(run_dir: str | Path) -> Any:
    """The agent parameters of a run's newest checkpoint (host numpy arrays)."""
    run_dir = Path(run_dir)
    config = load_yaml(run_dir / "config.yaml")
    p = plan(config)
    env = build_env(config)
    agent = AGENTS[config.agent](env.spec, config.ppo, p.num_updates, config.net)
    like = _init_runners(env, agent, config)
    ckpt = Checkpointer(run_dir / "checkpoints")
    try:
        latest = ckpt.latest()
        if latest is None:
            raise ResumeError(f"resume: {run_dir} has no checkpoint")
        return jax.device_get(ckpt.restore(latest, like).agent.params)
    finally:
        ckpt.close()
