"""What a training loop hands the run log, and the ``metrics.jsonl`` line made from it.

Each iteration of either loop returns an `IterationLog` (episode sums, whether it updated, and the agent's
and the plasticity hook's values); a chunk stacks them ``[seeds, iterations]`` and `chunk_row` reduces
every value as its `plastix.fields.Field` says. The fields of the line itself (counters, episode means,
evaluations) are `ROW_FIELDS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from flax import struct

from plastix.fields import Field, Reduce, field_of


@struct.dataclass
class IterationLog:
    """One iteration's values for the run log (a chunk's: each leaf stacked ``[seeds, iterations]``)."""

    episodes: dict[str, Any]
    """`plastix.run.episodes.track`'s sums over the iteration's steps (ended episodes' count, return, ...)."""
    updated: Any
    """bool: the iteration ran a gradient update."""
    values: dict[str, Any]
    """the agent's and the plasticity hook's metrics, each key one of the run's fields."""


_E, _R = Reduce.EPISODES, Reduce.RUN
ROW_FIELDS = (
    Field("chunk", "index", "0-based chunk number; checkpoint `chunk + 1` holds the state after it", _R),
    Field("step", "env steps per seed", "steps done at the end of the chunk (exact; the last chunk may be "
          "shorter)", _R),
    Field("episode_return", "return, per seed", "mean undiscounted return of the episodes that ended in the "
          "chunk", _E),
    Field("success_rate", "share, per seed", "share of those episodes that succeeded (`null` when the env "
          "reports no success)", _E),
    Field("episode_length", "steps, per seed", "mean length of those episodes", _E),
    Field("episodes", "count, per seed", "episodes that ended in the chunk", _E),
    Field("episode_return/<task>", "return, per seed", "multi-task envs (`TaskMix/MiniGrid-v0`, "
          "`TaskMix/MinAtar-v0`, Meta-World's MT sets): mean return of each task's episodes that ended in "
          "the chunk (`null` when none did)", _E),
    Field("episode_return_mean", "return", "`episode_return` averaged over seeds", _R),
    Field("steps_per_s", "env steps / s", "all seeds together, wall-clock of the chunk (on-device runs: "
          "compilation excluded, `compile_s`; host-stepped runs compile their jitted steps during the first "
          "chunk)", _R),
    Field("updates", "count", "gradient updates in the chunk (per seed)", _R),
    Field("eval_return", "return, per seed", "evaluation with the agent's evaluation policy (PPO samples, "
          "DQN acts eps_eval-greedy, SAC takes tanh of the mean), `eval_episodes` fresh episodes, at the "
          "first chunk at or after each multiple of `eval_every` and at the last chunk; absent elsewhere",
          _R),
    Field("eval_success", "share, per seed", "the same evaluation's success rate (Meta-World: the mean of "
          "the tasks' rates, as metaworld computes it)", _R),
    Field("eval_success/<task>", "share, per seed", "envs with their own evaluation protocol (Meta-World): "
          "each task's success rate (ML sets: the held-out test tasks')", _R),
    Field("eval_return/<task>", "return, per seed", "the same protocol's mean return per task (ML sets: "
          "`eval_return/all`)", _R),
)


def run_fields(agent: Any, hook: Any = None) -> tuple[Field, ...]:
    """Every field a run of ``agent`` logs, with the plasticity ``hook`` (None: none)."""
    return ROW_FIELDS + agent.fields + (() if hook is None else hook.fields)


def _per_episode(total: np.ndarray, count: np.ndarray) -> list[float | None]:
    return [float(t / c) if c else None for t, c in zip(total, count, strict=True)]


def chunk_row(log: IterationLog, fields: Sequence[Field], tasks: Sequence[str] = ()) -> dict[str, Any]:
    """The reduced values of a chunk's `IterationLog` ``[seeds, iterations]``: per-seed episode means, the
    update count and each value as its field in ``fields`` says (``KeyError`` for one no field declares).
    ``tasks`` names a task mix's tasks, for per-task returns."""
    ep = {k: np.asarray(v).sum(1) for k, v in log.episodes.items()}
    seeds = len(ep["episodes"])
    row: dict[str, Any] = {
        "episode_return": _per_episode(ep["return_sum"], ep["episodes"]),
        "success_rate": _per_episode(ep["success_sum"], ep["episodes"]) if "success_sum" in ep
        else [None] * seeds,
        "episode_length": _per_episode(ep["length_sum"], ep["episodes"]),
        "episodes": [int(e) for e in ep["episodes"]],
    }
    if "task_episodes" in ep:
        for j, name in enumerate(tasks):
            row[f"episode_return/{name}"] = _per_episode(ep["task_return_sum"][:, j],
                                                         ep["task_episodes"][:, j])
    updated = np.asarray(log.updated, bool)
    row["updates"] = int(updated[0].sum())
    for key, v in log.values.items():
        v, how = np.asarray(v), field_of(fields, key).reduce
        if how is Reduce.LAST:
            row[key] = float(np.mean(v[:, -1]))
            continue
        if how is Reduce.MEASURED:  # measured every few updates; NaN elsewhere
            kept = np.isfinite(v)
        elif how is Reduce.UPDATES:
            kept = np.broadcast_to(updated.reshape(updated.shape + (1,) * (v.ndim - 2)), v.shape)
        else:
            raise ValueError(f"{key}: a loop's value cannot be reduced {how.value!r}")
        if kept.any():
            row[key] = float(np.mean(v[kept]))
    returns = [r for r in row["episode_return"] if r is not None]
    row["episode_return_mean"] = float(np.mean(returns)) if returns else None
    return row


def first_nonfinite(log: IterationLog) -> int | None:
    """Index of the first updating iteration (within a chunk) whose loss is NaN or inf, over all seeds."""
    bad = ~np.isfinite(log.values["loss/total"]) & np.asarray(log.updated, bool)
    bad = bad.any(0)
    return int(np.argmax(bad)) if bad.any() else None
