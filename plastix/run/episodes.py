"""Episode statistics, one rule for both training loops and both evaluations.

The device loop applies these to ``jax.numpy`` arrays inside its scan, the host loop to ``numpy`` arrays
between env steps (``xp`` is the array module). An episode ends where the env reports
``info["episode_end"]`` (Atari: a game over, where a lost life may terminate the agent's episode), else
where it terminates or truncates; returns sum ``info["score"]`` where given (Atari's unclipped score),
else the reward. Success counts at an episode's end (``info["success"]``: has the episode succeeded so
far); ``info["task"]`` (a task mix, Meta-World's MT sets) splits episodes and returns by task. The
loops hand these sums to the run log (`plastix.run.row.IterationLog.episodes`), which divides them by the
episode count.
"""

from __future__ import annotations

from typing import Any


def track(xp: Any, ep_return: Any, ep_length: Any, reward: Any, terminated: Any, truncated: Any,
          info: dict[str, Any], num_tasks: int = 0) -> tuple[Any, Any, dict[str, Any]]:
    """One step of running episodes ``[..., envs]``: ``(ep_return, ep_length, sums)`` with the running
    return and length restarted where an episode ended, and ``sums`` the ended episodes' count, return,
    length (and success, and per-task count and return ``[..., num_tasks]``) summed over the envs."""
    ended = info.get("episode_end", terminated | truncated)
    ep_return = (ep_return + info.get("score", reward)).astype(ep_return.dtype)
    ep_length = ep_length + 1
    sums = {"episodes": ended.sum(-1), "return_sum": xp.where(ended, ep_return, 0.0).sum(-1),
            "length_sum": xp.where(ended, ep_length, 0).sum(-1)}
    if "success" in info:
        sums["success_sum"] = (ended & info["success"]).sum(-1)
    if "task" in info and num_tasks:
        ended_task = (info["task"][..., None] == xp.arange(num_tasks)).astype(xp.float32) * ended[..., None]
        sums["task_episodes"] = ended_task.sum(-2)
        sums["task_return_sum"] = (ended_task * ep_return[..., None]).sum(-2)
    return xp.where(ended, 0.0, ep_return).astype(ep_return.dtype), xp.where(ended, 0, ep_length), sums


def evaluation_step(xp: Any, tally: tuple[Any, Any, Any], reward: Any, terminated: Any, truncated: Any,
                    info: dict[str, Any]) -> tuple[Any, Any, Any]:
    """An evaluation's ``(return, success, finished)`` per env after one more step: each env counts its
    first episode only (the same end and score rules as `track`)."""
    ret, success, finished = tally
    ret = (ret + xp.where(finished, 0.0, info.get("score", reward))).astype(ret.dtype)
    if "success" in info:
        success = success | (~finished & info["success"])
    return ret, success, finished | info.get("episode_end", terminated | truncated)
