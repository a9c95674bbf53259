"""MinAtar Breakout: a paddle on row 9 bounces a diagonal ball into three rows of bricks (+1 a brick).

Exact to minatar 1.0.15, quirks included: a ball that was already striking a brick enters the next
brick cell without breaking it (the ``strike`` flag), the bricks refill only when the ball reaches row 9
with none left, and the paddle bounce compares the ball's old and new x with the paddle's new position.
The only randomness is the ball's starting side at reset; Breakout has no difficulty ramp.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.envs.minatar.game import SIZE, Game, any_row, one_cell, row_at, row_bits, to_rows, unpack_cells

CHANNELS = ("paddle", "ball", "trail", "brick")
_ROWS = np.arange(SIZE, dtype=np.int32)
_START_BRICKS = np.asarray([0, *[(1 << SIZE) - 1] * 3, *[0] * (SIZE - 4)], np.int32)  # rows 1-3 full


@struct.dataclass
class BreakoutState:
    """One Breakout game: ball, its previous cell (the trail), paddle column and the brick map."""

    ball_x: jax.Array  # int32
    ball_y: jax.Array  # int32
    ball_dir: jax.Array  # int32: 0 up-left, 1 up-right, 2 down-right, 3 down-left
    last_x: jax.Array  # int32, the ball's cell before the last step
    last_y: jax.Array  # int32
    pos: jax.Array  # int32, paddle column on row 9
    bricks: jax.Array  # int32[10]: row bit masks, bit x of row y a brick in cell (y, x)
    strike: jax.Array  # bool, the ball entered a brick cell on the last step
    terminal: jax.Array  # bool


def reset(ball_start: jax.Array) -> BreakoutState:
    """The first state: ball on row 3 at column 0 moving down-right (draw 0) or column 9 down-left (1)."""
    ball_start = jnp.asarray(ball_start, jnp.int32)
    x = 9 * ball_start
    return BreakoutState(
        ball_x=x,
        ball_y=jnp.int32(3),
        ball_dir=2 + ball_start,
        last_x=x,
        last_y=jnp.int32(3),
        pos=jnp.int32(4),
        bricks=jnp.asarray(_START_BRICKS),
        strike=jnp.bool_(False),
        terminal=jnp.bool_(False),
    )


def step(
    state: BreakoutState, action: jax.Array, draws: Any = (), ramping: bool = True
) -> tuple[BreakoutState, jax.Array, jax.Array]:
    """One ``act()``: move the paddle, then the ball, reflecting off walls, bricks and the paddle."""
    del draws, ramping  # Breakout draws nothing per step and ignores the difficulty ramp
    s = state
    action = jnp.asarray(action)
    pos = jnp.clip(s.pos + (action == 3).astype(jnp.int32) - (action == 1).astype(jnp.int32), 0, SIZE - 1)
    d = s.ball_dir
    new_x = s.ball_x + jnp.where((d == 1) | (d == 2), 1, -1)
    new_y = s.ball_y + jnp.where(d < 2, -1, 1)

    side_wall = (new_x < 0) | (new_x > SIZE - 1)
    new_x = jnp.clip(new_x, 0, SIZE - 1)
    d = jnp.where(side_wall, d ^ 1, d)

    top_wall = new_y < 0
    in_brick = ~top_wall & (((row_at(s.bricks, new_y) >> new_x) & 1) != 0)
    breaks = in_brick & ~s.strike
    at_bottom = ~top_wall & ~in_brick & (new_y == SIZE - 1)
    refill = at_bottom & ~any_row(s.bricks)
    broken = jnp.where(breaks & (_ROWS == new_y), s.bricks & ~(1 << new_x), s.bricks)
    bricks = jnp.where(refill, jnp.asarray(_START_BRICKS), broken)

    straight_back = at_bottom & (s.ball_x == pos)
    reversed_ = at_bottom & ~straight_back & (new_x == pos)
    terminal = at_bottom & ~straight_back & ~reversed_

    d = jnp.where(top_wall | breaks | straight_back, 3 - d, d)
    d = jnp.where(reversed_, d ^ 2, d)
    new_y = jnp.where(top_wall, 0, new_y)
    new_y = jnp.where(breaks | straight_back | reversed_, s.ball_y, new_y)

    moved = BreakoutState(
        ball_x=new_x,
        ball_y=new_y,
        ball_dir=d,
        last_x=s.ball_x,
        last_y=s.ball_y,
        pos=pos,
        bricks=bricks,
        strike=in_brick,
        terminal=terminal,
    )
    out = jax.tree.map(lambda old, new: jnp.where(s.terminal, old, new), s, moved)
    reward = jnp.where(s.terminal, 0.0, breaks.astype(jnp.float32))
    return out, reward, out.terminal


def reset_draws(words: jax.Array) -> jax.Array:
    """The reset's one draw, ``randint(2)`` (the ball's starting side): the top bit of one word."""
    return (words[0] >> 31).astype(jnp.int32)


def step_draws(words: jax.Array, state: BreakoutState) -> tuple[()]:
    """No draws: a Breakout step is deterministic."""
    del words, state
    return ()


def observe(state: BreakoutState) -> jax.Array:
    """``bool[10, 10, 4]``: paddle, ball, trail (the ball's previous cell), bricks."""
    cells = (one_cell(SIZE - 1, state.pos, 0) | one_cell(state.ball_y, state.ball_x, 1)
             | one_cell(state.last_y, state.last_x, 2) | row_bits(state.bricks, 3))
    return unpack_cells(cells, len(CHANNELS))


def from_minatar(env: Any) -> BreakoutState:
    """The state of a reference ``minatar.environments.breakout.Env``."""
    return BreakoutState(
        ball_x=jnp.int32(env.ball_x),
        ball_y=jnp.int32(env.ball_y),
        ball_dir=jnp.int32(env.ball_dir),
        last_x=jnp.int32(env.last_x),
        last_y=jnp.int32(env.last_y),
        pos=jnp.int32(env.pos),
        bricks=to_rows(env.brick_map),
        strike=jnp.bool_(env.strike),
        terminal=jnp.bool_(env.terminal),
    )


GAME = Game(
    name="breakout",
    title="Breakout",
    channels=CHANNELS,
    minimal_actions=(0, 1, 3),
    reset=reset,
    step=step,
    reset_words=1,
    reset_draws=reset_draws,
    step_words=0,
    step_draws=step_draws,
    observe=observe,
    from_minatar=from_minatar,
)
