"""Several envs in one vmapped batch, for multi-task and continual training (the MoE-in-RL regimes of
Willi et al. 2024): the task mix behind ``TaskMix/MiniGrid-v0`` (`plastix.envs.grid.taskmix`) and
``TaskMix/MinAtar-v0`` (`plastix.envs.minatar.taskmix`), with ``--taskmix.tasks`` naming the ids.

Each env carries the state of every task of the mix and plays one of them (``task``); a step advances
the active task's state only, with the task's own dynamics, rewards and time limit, so a task's
transitions are exactly its single-task env's for the same key. Between episodes the next task is drawn
uniformly (multi-task) or, with ``switch_every`` N, follows the schedule task ``(t // N) % k`` of the
env's step count ``t`` (continual): the episode in flight at a switch is truncated, so the task changes
exactly every N steps, and ``t`` lives in the env state, so a resumed run switches where it would have.

The task id is in ``info["task"]`` and, with ``task_in_obs``, in the observation as ``k`` constant
one-hot channels after the view's own (`EnvSpec.num_tasks`), which agents read as the id that
task-routed experts (``--net.moe.kind task``) need. All tasks must share the observation shape and the
action count; a family's ``make`` function builds its tasks so that they do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from plastix.envs.api import Box, Discrete, Env, EnvSpec, auto_reset, check_env_id


class TaskMixError(ValueError):
    """A task mix that cannot be built: unknown ids, shapes that differ, a schedule out of range."""


@dataclass(frozen=True)
class TaskMixOptions:
    """The tasks of a task mix (``TaskMix/MiniGrid-v0``, ``TaskMix/MinAtar-v0``) and how they alternate
    (``--taskmix.*``)."""

    tasks: tuple[str, ...] = ()
    """Ids of the mix (at least two): gridworlds for TaskMix/MiniGrid-v0 (e.g. MiniGrid-DoorKey-5x5-v0
    MiniGrid-LavaGapS5-v0), MinAtar games for TaskMix/MinAtar-v0 (e.g. MinAtar/Breakout-v0
    MinAtar/SpaceInvaders-v0)."""
    switch_every: int = 0
    """Continual: the task changes every this many steps of each env (task (t // N) % k); 0: every episode
    draws a task uniformly (multi-task)."""
    task_in_obs: bool = True
    """Append the task id to the observation as one-hot channels (needed by task-routed experts)."""


@struct.dataclass
class TaskMixState:
    task: jax.Array  # int32[], the task this env plays
    t: jax.Array  # int32[], this env's steps since the run began (the continual schedule's clock)
    states: tuple  # one state per task; only states[task] advances


@dataclass(frozen=True, eq=False)
class TaskMix(Env):
    """The envs ``envs`` in one env (one per call; vmap for batches); they share one observation shape
    and one action count."""

    env_id: str
    envs: tuple[Any, ...]
    options: TaskMixOptions = field(default_factory=TaskMixOptions)

    def __post_init__(self) -> None:
        shapes = {e.env_id: e.observation_space.shape for e in self.envs}
        if len(set(shapes.values())) > 1:
            raise TaskMixError(f"taskmix.tasks: the tasks' observations differ in shape ({shapes}); "
                               f"gridworlds: use an observation whose shape does not depend on the grid "
                               f"(egocentric, onehot, rgb)")
        actions = {e.env_id: e.action_space.n for e in self.envs}
        if len(set(actions.values())) > 1:
            raise TaskMixError(f"taskmix.tasks: the tasks' action counts differ ({actions})")

    @property
    def num_tasks(self) -> int:
        return len(self.envs)

    @property
    def observation_space(self) -> Box:
        space = self.envs[0].observation_space
        if not self.options.task_in_obs:
            return space
        return Box(0, space.high, space.shape[:-1] + (space.shape[-1] + self.num_tasks,), space.dtype)

    @property
    def action_space(self) -> Discrete:
        return self.envs[0].action_space

    @property
    def max_steps(self) -> int:
        return max(e.max_steps for e in self.envs)

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(self.env_id, self.observation_space, self.action_space, self.max_steps, True,
                       num_tasks=self.num_tasks if self.options.task_in_obs else 0,
                       task_names=tuple(e.env_id for e in self.envs))

    def _schedule(self, t: jax.Array) -> jax.Array:
        return (t // self.options.switch_every) % self.num_tasks

    def _fresh(self, key: jax.Array, task: jax.Array, t: jax.Array,
               states: tuple | None = None) -> TaskMixState:
        """A new episode of ``task``: its state fresh from its own layout, the others kept (or fresh). A
        task whose env carries state across its resets (``next_episode``: MinAtar's last action) starts
        from its own previous state's, as it would alone."""
        keys = [jax.random.fold_in(key, j) for j in range(self.num_tasks)]
        if states is None:
            fresh = tuple(e.reset_env(k) for e, k in zip(self.envs, keys, strict=True))
        else:
            fresh = tuple(e.next_episode(k, s) if hasattr(e, "next_episode") else e.reset_env(k)
                          for e, k, s in zip(self.envs, keys, states, strict=True))
            fresh = tuple(jax.tree.map(lambda a, b, j=j: jnp.where(task == j, a, b), f, s)
                          for j, (f, s) in enumerate(zip(fresh, states, strict=True)))
        return TaskMixState(task=jnp.asarray(task, jnp.int32), t=jnp.asarray(t, jnp.int32), states=fresh)

    def _next_task(self, key: jax.Array, t: jax.Array) -> jax.Array:
        if self.options.switch_every:
            return self._schedule(t)
        return jax.random.randint(jax.random.fold_in(key, self.num_tasks), (), 0, self.num_tasks)

    def reset_env(self, key: jax.Array, params: Any = None) -> TaskMixState:
        return self._fresh(key, self._next_task(key, jnp.int32(0)), jnp.int32(0))

    def step_env(self, key: jax.Array, state: TaskMixState, action: jax.Array, params: Any = None):
        """The active task's transition (every task's is computed and the active one's kept: vmap runs
        both sides of a branch anyway). A continual switch truncates the episode in flight."""
        outs = [e.step_env(key, s, action) for e, s in zip(self.envs, state.states, strict=True)]
        task = state.task
        pick = lambda xs: jnp.stack(xs)[task]  # noqa: E731
        states = tuple(jax.tree.map(lambda a, b, j=j: jnp.where(task == j, a, b), out[0], s)
                       for j, (out, s) in enumerate(zip(outs, state.states, strict=True)))
        reward, terminated, truncated = (pick([o[i] for o in outs]) for i in (1, 2, 3))
        info = {k: pick([o[4][k] for o in outs]) for k in outs[0][4]}
        t = state.t + 1
        if self.options.switch_every:
            truncated = truncated | (self._schedule(t) != task)
        return TaskMixState(task, t, states), reward, terminated, truncated, {**info, "task": task}

    def step(self, key: jax.Array, state: TaskMixState, action: jax.Array, params: Any = None):
        """`Env.step`, with the clock carried across the auto-reset and the next task drawn at it."""
        key_step, key_reset = jax.random.split(key)
        next_state, reward, terminated, truncated, info = self.step_env(key_step, state, action)
        reset = self._fresh(key_reset, self._next_task(key_reset, next_state.t), next_state.t,
                            next_state.states)
        return auto_reset(self, params, next_state, reset, reward, terminated, truncated, info)

    def observe(self, state: TaskMixState, params: Any = None) -> jax.Array:
        obs = jnp.stack([e.observe(s) for e, s in zip(self.envs, state.states, strict=True)])[state.task]
        if not self.options.task_in_obs:
            return obs
        planes = jnp.broadcast_to(jax.nn.one_hot(state.task, self.num_tasks, dtype=obs.dtype),
                                  obs.shape[:-1] + (self.num_tasks,))
        return jnp.concatenate([obs, planes], -1)


def check_options(options: TaskMixOptions, accepts: Callable[[str], bool], what: str) -> None:
    """Raise `TaskMixError` unless ``options`` name at least two different registered ids that
    ``accepts`` (``what`` names them in the message) and a schedule >= 0."""
    if len(options.tasks) < 2 or len(set(options.tasks)) != len(options.tasks):
        raise TaskMixError(f"taskmix.tasks: a mix needs at least two different {what}, got "
                           f"{list(options.tasks)}")
    if options.switch_every < 0:
        raise TaskMixError(f"taskmix.switch_every: must be >= 0 (0: multi-task), got {options.switch_every}")
    for task in options.tasks:
        try:
            check_env_id(task)
        except ValueError as err:
            raise TaskMixError(f"taskmix.tasks: {err}") from None
        if not accepts(task):
            raise TaskMixError(f"taskmix.tasks: {task!r} is not one of the {what}")
