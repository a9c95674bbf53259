"""Config in, run directory out: validate, build, train in chunks, log, checkpoint, evaluate, plot.

A run directory holds ``config.yaml``, ``metrics.jsonl``, ``tb/`` (TensorBoard), ``checkpoints/``,
``summary.json`` and ``plots/learning_curve.png``. `resume` continues a killed run from its last
checkpoint; because the checkpoint is the loop's whole carry, the result equals an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np

from plastix.envs.atari_scores import has_reference, human_normalized
from plastix.run.checkpoint import Checkpointer, ResumeError
from plastix.run.config import Plan, RunConfig, load_yaml, plan, save_yaml, to_dict, validate
from plastix.run.host_loop import HostEnvError
from plastix.run.load import eval_keys, evaluate_seeds, init_runners, traced_program
from plastix.run.lock import run_lock
from plastix.run.logging import MetricsLog, ProgressBar
from plastix.run.plots import activity_curves, learning_curve
from plastix.run.row import chunk_row, first_nonfinite, run_fields


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


def run(config: RunConfig, run_dir: Path | None = None, resuming: bool = False,
        say: Callable[[str], None] = print) -> TrainResult:
    """Train ``config`` into ``run_dir`` (a new directory unless ``resuming``), holding the directory's
    lock throughout; ``say`` reports where a resumed run continues from and any unusable checkpoint.
    The config is validated and its program traced on shapes before any directory is made."""
    validate(config)
    env, agent, loop, hook = traced_program(config)
    try:
        if run_dir is None:
            run_dir = _new_run_dir(config)
        with run_lock(run_dir):
            if not resuming:
                save_yaml(config, Path(run_dir) / "config.yaml")
            return _train(config, Path(run_dir), resuming, say, plan(config), agent, loop, hook)
    finally:
        loop.close()


def _train(config: RunConfig, run_dir: Path, resuming: bool, say: Callable[[str], None], p: Plan,
           agent: Any, loop: Any, hook: Any) -> TrainResult:
    runner = init_runners(loop, config)
    ckpt = Checkpointer(run_dir / "checkpoints", background=not loop.donates)
    start = 0
    if resuming:
        restored = ckpt.restore_latest(runner, say)
        if restored is not None:
            start, runner = restored
    done_steps = p.steps_after(start - 1) if start else 0
    if resuming:
        say(f"resuming {run_dir} from checkpoint {start}: step {done_steps:,} of {p.total_steps:,} per seed")
    log = MetricsLog(run_dir, resume_chunk=start, resume_step=done_steps, wandb=config.wandb,
                     config=to_dict(config))
    chunk_fns: dict[int, Any] = {}
    fields = run_fields(agent, hook)

    def chunk_fn(iterations: int):
        if iterations not in chunk_fns:
            chunk_fns[iterations] = loop.chunk(iterations, hook, runner)
        return chunk_fns[iterations]

    t = time.perf_counter()
    for chunk in sorted({start, p.num_chunks - 1} & set(range(start, p.num_chunks))):  # a short last one too
        chunk_fn(p.chunk_iterations(chunk))
    compile_s = time.perf_counter() - t
    evaluate = loop.evaluator(config.eval_episodes, config.eval_max_steps,
                              like=(runner.agent, eval_keys(config, 1)))

    def last_good(chunk: int) -> str:
        """Where the state before ``chunk`` is kept, saving it when the loop left it intact."""
        step = p.steps_after(chunk - 1) if chunk else 0
        if ckpt.latest() == chunk:
            return f"the last good state (step {step:,}) is checkpoint {chunk} in {run_dir}"
        if not loop.donates:
            ckpt.save(chunk, runner)
            return f"saved the last good state (step {step:,}) as checkpoint {chunk} in {run_dir}"
        return "no checkpoint holds an earlier state (it failed in the run's first chunk)"

    bar = ProgressBar(p.total_steps, done_steps, config.progress)
    final = None
    try:
        for chunk in range(start, p.num_chunks):
            t = time.perf_counter()
            first = chunk * p.per_chunk
            try:
                next_runner, metrics = chunk_fn(p.chunk_iterations(chunk))(runner, np.int32(first))
            except HostEnvError as err:
                raise HostEnvError(f"{err}; stopped: {last_good(chunk)}") from err
            metrics = jax.device_get(metrics)
            seconds = time.perf_counter() - t
            bad = first_nonfinite(metrics)
            if bad is not None:
                step = (first + bad + 1) * p.batch
                raise NonFiniteLossError(
                    f"loss became NaN/inf at iteration {first + bad + 1} (env step {step:,} per seed); "
                    f"stopped: {last_good(chunk)}"
                )
            runner = next_runner
            iterations = p.chunk_iterations(chunk)
            row = {"chunk": chunk, "step": p.steps_after(chunk),
                   **chunk_row(metrics, fields, agent.spec.task_names),
                   "steps_per_s": config.seeds * iterations * p.batch / seconds}
            every = config.eval_every
            if chunk == p.num_chunks - 1:  # the final evaluation, logged with the last row when evaluating
                final = evaluate_seeds(evaluate, runner.agent, config, 1)
                if every:
                    row |= final
            elif every and row["step"] // every > first * p.batch // every:
                row |= evaluate_seeds(evaluate, runner.agent, config, 2 + chunk)
            log.write(row)
            ckpt.save(chunk + 1, runner)
            bar.update(row["step"], row["steps_per_s"], row["episode_return_mean"])
    finally:
        bar.close()
        log.close()
        ckpt.close()

    ev = final if final is not None else evaluate_seeds(evaluate, runner.agent, config, 1)
    result = TrainResult(
        run_dir=run_dir,
        steps=p.total_steps,
        eval_success=ev["eval_success"],
        eval_return=ev["eval_return"],
        plot=run_dir / "plots" / "learning_curve.png",
    )
    summary = {
        "env": config.env, "agent": config.agent, "steps_per_seed": p.total_steps,
        "seeds": config.seeds, "compile_s": compile_s, "eval_episodes": config.eval_episodes,
        "eval_success": result.eval_success, "eval_return": result.eval_return,
    }
    per_task = {k.removeprefix("eval_"): v for k, v in ev.items() if "/" in k}
    if per_task:  # the benchmark's per-task rates (Meta-World): "success/<task>" -> per seed
        summary["eval_per_task"] = per_task
    summary["parameters"] = parameter_counts(agent, runner.agent)
    if config.env.startswith(("ALE/", "CALE/")) and has_reference(config.env):
        summary["human_normalized"] = [float(human_normalized(r, config.env)) for r in result.eval_return]
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    learning_curve(run_dir, result.plot)
    if config.plasticity.metric_names or config.plasticity.reset != "none":
        activity_curves(run_dir, run_dir / "plots" / "activity.png")
    return result


def parameter_counts(agent: Any, state: Any) -> dict[str, int]:
    """Parameters of each of the agent's networks (one seed's), by the agent's network names."""
    return {name: int(sum(np.prod(x.shape[1:]) for x in jax.tree.leaves(getattr(state, net.params))))
            for name, net in agent.plastic_nets().items()}


def train(config: RunConfig) -> TrainResult:
    """Start a new run."""
    return run(config)


def resume(run_dir: str | Path, progress: bool | None = None,
           say: Callable[[str], None] = print) -> TrainResult:
    """Continue the run in ``run_dir`` from its newest intact checkpoint (from the start if it has none).
    ``progress`` overrides the progress bar, the one setting a resume may change (it changes no result)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ResumeError(f"resume: {run_dir} does not exist")
    if not (run_dir / "config.yaml").is_file():
        raise ResumeError(f"resume: {run_dir} has no config.yaml, so it is not a plastix run")
    config = load_yaml(run_dir / "config.yaml")
    if progress is not None:
        config = dataclasses.replace(config, progress=progress)
    return run(config, run_dir, resuming=True, say=say)
