"""MiniGrid's reward and termination rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from plastix.envs.grid.dynamics import Action, Transition
from plastix.envs.grid.entities import GOAL, LAVA, TYPE
from plastix.envs.grid.state import GridState


def success_reward(step_count: jax.Array, max_steps: jax.Array | int) -> jax.Array:
    """``1 - 0.9 * step_count / max_steps``, paid on success (``MiniGridEnv._reward``)."""
    return (1.0 - 0.9 * (step_count / max_steps)).astype(jnp.float32)


def goal_or_lava(state: GridState, tr: Transition, max_steps: jax.Array | int,
                 before: GridState | None = None):
    """Stepping forward onto the goal succeeds, onto lava fails: (reward, terminated, success)."""
    forward = tr.action == Action.FORWARD
    on_goal = forward & (tr.fwd_cell[TYPE] == GOAL)
    on_lava = forward & (tr.fwd_cell[TYPE] == LAVA)
    reward = jnp.where(on_goal, success_reward(state.step_count, max_steps), 0.0)
    return reward, on_goal | on_lava, on_goal


def truncated(state: GridState, max_steps: jax.Array | int) -> jax.Array:
    """The episode hits its step budget."""
    return state.step_count >= max_steps
