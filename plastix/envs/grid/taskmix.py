"""Several gridworlds in one vmapped batch, for multi-task and continual training (the MoE-in-RL
regimes of Willi et al. 2024): ``TaskMix/MiniGrid-v0`` with ``--taskmix.tasks`` naming the ids.

The mix itself (`TaskMix`: task schedule, task ids in ``info`` and the observation) is
`plastix.envs.taskmix`'s, shared with ``TaskMix/MinAtar-v0``; this module builds the gridworld one. All
tasks must share the observation shape (the egocentric, one-hot and RGB views do; full views differ
with the grid size) and the action count.
"""

from __future__ import annotations

from plastix.envs.api import make
from plastix.envs.taskmix import TaskMix, TaskMixError, TaskMixOptions, TaskMixState, check_options

TASKMIX_ID = "TaskMix/MiniGrid-v0"


def make_taskmix(env_id: str = TASKMIX_ID, options: TaskMixOptions | None = None,
                 observation: str = "egocentric") -> TaskMix:
    """The mix ``options`` names; every id is checked (close matches) before anything is built."""
    options = options or TaskMixOptions()
    check_options(options, lambda task: task.startswith("MiniGrid-"), "gridworld ids")
    return TaskMix(env_id, tuple(make(t, observation=observation) for t in options.tasks), options)


__all__ = ["TASKMIX_ID", "TaskMix", "TaskMixError", "TaskMixOptions", "TaskMixState", "make_taskmix"]
