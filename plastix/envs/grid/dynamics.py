"""MiniGrid's transition for its 7 actions on the encoded grid (``MiniGridEnv.step`` minus rewards).

Every branch is computed and selected with ``where`` (one cell of the grid changes per step at most),
which keeps the step branch-free under ``vmap``. Task rewards and terminations are decided by the
family from the returned `Transition`, so the movement rules live in one place.
"""

from __future__ import annotations

from enum import IntEnum

import jax
import jax.numpy as jnp
from flax import struct

from plastix.envs.grid.entities import (
    BOX,
    CLOSED,
    CONTAINS_COLOR,
    CONTAINS_TYPE,
    DIR_TO_VEC,
    DOOR,
    EMPTY,
    EMPTY_CELL,
    KEY,
    LOCKED,
    OPEN,
    STATE_CH,
    TYPE,
    can_overlap,
    can_pickup,
)
from plastix.envs.grid.state import GridState


class Action(IntEnum):
    """MiniGrid's action indices."""

    LEFT = 0
    RIGHT = 1
    FORWARD = 2
    PICKUP = 3
    DROP = 4
    TOGGLE = 5
    DONE = 6


NUM_ACTIONS = len(Action)


@struct.dataclass
class Transition:
    """What happened in one step, for the family's reward and termination rules."""

    action: jax.Array
    fwd_pos: jax.Array  # the cell in front of the agent before the step
    fwd_cell: jax.Array  # its content before the step
    picked_up: jax.Array  # bool: the agent picked up fwd_cell
    dropped: jax.Array  # bool: the agent dropped what it carried onto fwd_pos
    toggled: jax.Array  # bool: toggle acted on fwd_cell (door opened/closed/unlocked, box opened)


def front_pos(state: GridState) -> jax.Array:
    """The (x, y) right in front of the agent, clipped into the grid."""
    pos = state.agent_pos + DIR_TO_VEC[state.agent_dir]
    return jnp.clip(pos, 0, jnp.array([state.width - 1, state.height - 1]))


def toggled_cell(c: jax.Array, carrying: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``WorldObj.toggle`` on an encoded cell: doors open/close/unlock, boxes turn into their content."""
    t, s = c[TYPE], c[STATE_CH]
    has_key = (carrying[TYPE] == KEY) & (carrying[1] == c[1])
    unlock = (t == DOOR) & (s == LOCKED) & has_key
    flip = (t == DOOR) & (s != LOCKED)
    door_state = jnp.where(unlock, OPEN, jnp.where(s == OPEN, CLOSED, OPEN)).astype(jnp.uint8)
    door = c.at[STATE_CH].set(door_state)
    content = jnp.where(
        c[CONTAINS_TYPE] == 0,
        jnp.asarray(EMPTY_CELL),
        jnp.asarray(EMPTY_CELL).at[TYPE].set(c[CONTAINS_TYPE]).at[1].set(c[CONTAINS_COLOR]),
    )
    is_box = t == BOX
    new = jnp.where(unlock | flip, door, jnp.where(is_box, content, c))
    return new, unlock | flip | is_box


def move(state: GridState, action: jax.Array) -> tuple[GridState, Transition]:
    """Apply one action with MiniGrid's rules; increments the step counter."""
    fwd = front_pos(state)
    c = state.grid[fwd[0], fwd[1]]
    empty_handed = state.carrying[TYPE] == EMPTY
    cell_empty = c[TYPE] == EMPTY

    turn = jnp.where(action == Action.LEFT, 3, jnp.where(action == Action.RIGHT, 1, 0))
    agent_dir = (state.agent_dir + turn) % 4
    go = (action == Action.FORWARD) & can_overlap(c)
    agent_pos = jnp.where(go, fwd, state.agent_pos)

    pick = (action == Action.PICKUP) & can_pickup(c) & empty_handed
    drop = (action == Action.DROP) & cell_empty & ~empty_handed
    toggle_result, toggles = toggled_cell(c, state.carrying)
    toggle = (action == Action.TOGGLE) & toggles

    new_cell = jnp.where(pick, jnp.asarray(EMPTY_CELL), c)
    new_cell = jnp.where(drop, state.carrying, new_cell)
    new_cell = jnp.where(toggle, toggle_result, new_cell)
    carrying = jnp.where(pick, c, jnp.where(drop, jnp.asarray(EMPTY_CELL), state.carrying))

    next_state = state.replace(
        grid=state.grid.at[fwd[0], fwd[1]].set(new_cell),
        agent_pos=agent_pos,
        agent_dir=agent_dir,
        carrying=carrying,
        step_count=state.step_count + 1,
    )
    return next_state, Transition(action, fwd, c, pick, drop, toggle)
