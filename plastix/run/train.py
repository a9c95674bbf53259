"""Config in, run directory out: validate, build, train in chunks, log, checkpoint, evaluate, plot.

A run directory holds ``config.yaml``, ``metrics.jsonl``, ``tb/`` (TensorBoard), ``checkpoints/``,
``summary.json`` and ``plots/learning_curve.png``. `resume` continues a killed run from its last
checkpoint; because the checkpoint is the loop's whole carry, the result equals an uninterrupted run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from plastix.plasticity.hook import make_hook
from plastix.run.checkpoint import Checkpointer, ResumeError
from plastix.run.config import Plan, RunConfig, load_yaml, plan, save_yaml, validate
from plastix.run.load import build, init_runners, seed_keys
from plastix.run.logging import MetricsLog, ProgressBar
from plastix.run.loop import make_chunk, make_evaluate, shard_seeds
from plastix.run.plots import activity_curves, learning_curve


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN / inf loss; the last finite state was checkpointed."""


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    steps: int
    eval_success: list[float]  # per seed
    eval_return: list[float]  # per seed
    plot: Path


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


EPISODE_SUMS = ("return_sum", "success_sum", "length_sum", "episodes", "updated")


def _row(chunk: int, p: Plan, metrics: dict[str, np.ndarray], seconds: float,
         seeds: int) -> dict[str, Any]:
    """One metrics.jsonl line from a chunk's per-(seed, iteration) metrics. The agent's own metrics
    are averaged over the iterations that updated (activity: over those that measured)."""
    episodes = metrics["episodes"].sum(1)
    per_seed = lambda k: [
        float(s / e) if e else None for s, e in zip(metrics[k].sum(1), episodes, strict=True)
    ]
    iterations = metrics["episodes"].shape[1]
    row: dict[str, Any] = {
        "chunk": chunk,
        "step": p.steps_after(chunk),
        "episode_return": per_seed("return_sum"),
        "success_rate": per_seed("success_sum") if "success_sum" in metrics else [None] * seeds,
        "episode_length": per_seed("length_sum"),
        "episodes": [int(e) for e in episodes],
        "steps_per_s": seeds * iterations * p.batch / seconds,
    }
    updated = np.asarray(metrics["updated"], bool)
    row["updates"] = int(updated[0].sum())
    for k, v in metrics.items():
        if k in EPISODE_SUMS:
            continue
        v = np.asarray(v)
        measured = np.isfinite(v) if k.startswith("activity/") else np.broadcast_to(
            updated.reshape(updated.shape + (1,) * (v.ndim - 2)), v.shape)
        if measured.any():  # activity is measured every few updates; NaN elsewhere
            row[k] = float(np.mean(v[measured]))
    returns = [r for r in row["episode_return"] if r is not None]
    row["episode_return_mean"] = float(np.mean(returns)) if returns else None
    return row


def _first_nonfinite(metrics: dict[str, np.ndarray]) -> int | None:
    """Index of the first updating iteration (within a chunk) whose loss is NaN or inf, over all seeds."""
    bad = ~np.isfinite(metrics["loss/total"]) & np.asarray(metrics["updated"], bool)
    bad = bad.any(0)
    return int(np.argmax(bad)) if bad.any() else None


def _evaluate(evaluate: Any, runner: Any, config: RunConfig, index: int) -> dict[str, list[float]]:
    """Per-seed mean return and success rate of ``eval_episodes`` episodes; ``index`` picks the keys."""
    keys = shard_seeds(jax.vmap(lambda k: jax.random.fold_in(k, index))(seed_keys(config)), config.seeds)
    ev = jax.device_get(evaluate(runner.agent, keys))
    return {"eval_return": [float(x) for x in ev["return"].mean(1)],
            "eval_success": [float(x) for x in ev["success"].mean(1)]}


def run(config: RunConfig, run_dir: Path | None = None, resuming: bool = False) -> TrainResult:
    """Train ``config`` into ``run_dir`` (a new directory unless ``resuming``)."""
    validate(config)
    p = plan(config)
    env, agent = build(config)
    if run_dir is None:
        run_dir = _new_run_dir(config)
    if not resuming:
        save_yaml(config, run_dir / "config.yaml")

    runner = shard_seeds(init_runners(env, agent, config), config.seeds)
    ckpt = Checkpointer(run_dir / "checkpoints")
    start = 0
    if resuming and ckpt.latest() is not None:
        start = ckpt.latest()
        runner = ckpt.restore(start, runner)
    done_steps = p.steps_after(start - 1) if start else 0
    log = MetricsLog(run_dir, resume_chunk=start, resume_step=done_steps)
    hook = make_hook(agent, config.plasticity)
    chunk_fns: dict[int, Any] = {}

    def chunk_fn(iterations: int):
        if iterations not in chunk_fns:
            fn = make_chunk(env, agent, iterations, config.seeds, hook)
            chunk_fns[iterations] = fn.lower(runner, np.int32(0)).compile()
        return chunk_fns[iterations]

    t = time.perf_counter()
    chunk_fn(p.per_chunk)
    compile_s = time.perf_counter() - t
    evaluate = make_evaluate(env, agent, config.eval_episodes, num_seeds=config.seeds)

    bar = ProgressBar(p.total_steps, done_steps, config.progress)
    final = None
    try:
        for chunk in range(start, p.num_chunks):
            t = time.perf_counter()
            first = chunk * p.per_chunk
            next_runner, metrics = chunk_fn(p.chunk_iterations(chunk))(runner, np.int32(first))
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - t
            bad = _first_nonfinite(metrics)
            if bad is not None:
                ckpt.save(chunk, runner)
                step = (first + bad + 1) * p.batch
                raise NonFiniteLossError(
                    f"loss became NaN/inf at iteration {first + bad + 1} (env step {step:,} per seed); "
                    f"stopped, and saved the last finite state (step {first * p.batch:,}) as checkpoint "
                    f"{chunk} in {run_dir}"
                )
            runner = next_runner
            row = _row(chunk, p, metrics, seconds, config.seeds)
            if chunk == p.num_chunks - 1:  # the final evaluation, logged with the last row when evaluating
                final = _evaluate(evaluate, runner, config, 1)
                if config.eval_every:
                    row |= final
            elif config.eval_every and row["step"] // config.eval_every > first * p.batch // config.eval_every:
                row |= _evaluate(evaluate, runner, config, 2 + chunk)
            log.write(row)
            ckpt.save(chunk + 1, runner)
            bar.update(row["step"], row["steps_per_s"], row["episode_return_mean"])
    finally:
        bar.close()
        log.close()
        ckpt.close()

    ev = final if final is not None else _evaluate(evaluate, runner, config, 1)
    result = TrainResult(
        run_dir=run_dir,
        steps=p.total_steps,
        eval_success=ev["eval_success"],
        eval_return=ev["eval_return"],
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
