"""MinAtar SpaceInvaders in JAX, exact to minatar 1.0.15.

The cannon on row 9 moves left / right and fires upward (one shot per ``SHOT_COOL_DOWN`` steps); a block of
aliens sweeps sideways, steps down and turns when it touches an edge, and the alien nearest the cannon fires
every ``ENEMY_SHOT_INTERVAL`` steps. Each alien hit gives +1 (several in one step are possible); a cleared
wave refills (and, with ramping, the aliens move faster); an enemy bullet or an alien reaching the cannon ends
the episode. The game draws nothing at random, so its draw pytrees are empty.

Each 10x10 map is kept as its rows' bit masks (``int32[10]``, bit ``c`` of row ``r`` is cell ``(r, c)``): a
sideways alien move is a shift, a bullet move a roll of ten integers, and every rule stays a straight-line
whole-array operation (no gathers, no loops), which keeps a vmapped step cheap.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.envs.minatar.game import SIZE, Game, to_grid

SHOT_COOL_DOWN = 5
ENEMY_MOVE_INTERVAL = 12  # steps between alien moves in the first wave
MIN_ENEMY_MOVE_INTERVAL = 6  # ramping stops here
ENEMY_SHOT_INTERVAL = 10
CHANNELS = ("cannon", "alien", "alien_left", "alien_right", "friendly_bullet", "enemy_bullet")
MINIMAL_ACTIONS = (0, 1, 3, 5)  # n, l, r, f

_LEFT, _RIGHT, _FIRE = 1, 3, 5
_FULL_ROW = (1 << SIZE) - 1
_COLUMNS = jnp.arange(SIZE, dtype=jnp.int32)
_ROWS = jnp.arange(SIZE, dtype=jnp.int32)
_WAVE_ROW = sum(1 << c for c in range(2, 8))  # a new wave fills rows 0-3, columns 2-7
_WAVE = jnp.asarray([_WAVE_ROW] * 4 + [0] * (SIZE - 4), jnp.int32)


@struct.dataclass
class SpaceInvadersState:
    """One SpaceInvaders game: the reference ``Env``'s attributes, each map as ``int32[10]`` row bit masks."""

    pos: jax.Array  # int32 cannon column (the cannon is on row 9)
    alien: jax.Array  # int32[10] row masks
    f_bullet: jax.Array  # int32[10] row masks of friendly bullets, moving up
    e_bullet: jax.Array  # int32[10] row masks of enemy bullets, moving down
    alien_dir: jax.Array  # int32, -1 (left) or +1 (right)
    enemy_move_interval: jax.Array  # int32
    alien_move_timer: jax.Array  # int32
    alien_shot_timer: jax.Array  # int32
    ramp_index: jax.Array  # int32
    shot_timer: jax.Array  # int32
    terminal: jax.Array  # bool


def _int32(value: Any) -> jax.Array:
    return jnp.asarray(int(value), jnp.int32)


def _columns_hit(rows: jax.Array) -> jax.Array:
    """The bit mask of the columns holding at least one set cell."""
    return jax.lax.reduce(rows, jnp.int32(0), jax.lax.bitwise_or, (0,))


def reset(draws: Any = ()) -> SpaceInvadersState:
    """The first state of an episode (``draws`` is the empty pytree of ``draw_reset``)."""
    del draws
    empty = jnp.zeros(SIZE, jnp.int32)
    return SpaceInvadersState(
        pos=_int32(5),
        alien=_WAVE,
        f_bullet=empty,
        e_bullet=empty,
        alien_dir=_int32(-1),
        enemy_move_interval=_int32(ENEMY_MOVE_INTERVAL),
        alien_move_timer=_int32(ENEMY_MOVE_INTERVAL),
        alien_shot_timer=_int32(ENEMY_SHOT_INTERVAL),
        ramp_index=_int32(0),
        shot_timer=_int32(0),
        terminal=jnp.asarray(False),
    )


def reset_draws(words: jax.Array) -> tuple[()]:
    """A reset draws nothing: the empty pytree."""
    del words
    return ()


def step_draws(words: jax.Array, state: SpaceInvadersState) -> tuple[()]:
    """A step draws nothing: the empty pytree."""
    del words, state
    return ()


def _shot(alien: jax.Array, pos: jax.Array) -> jax.Array:
    """Row masks holding the one enemy bullet fired now: from the column nearest the cannon that holds an
    alien (ties to the left), at its lowest alien; no bullet when there is no alien."""
    occupied = (jnp.right_shift(_columns_hit(alien), _COLUMNS) & 1) != 0
    rank = 2 * jnp.abs(_COLUMNS - pos) + (_COLUMNS > pos)
    column = jnp.argmin(jnp.where(occupied, rank, 4 * SIZE)).astype(jnp.int32)
    in_column = (jnp.right_shift(alien, column) & 1) != 0
    lowest = (SIZE - 1) - jnp.argmax(in_column[::-1])
    return jnp.where((_ROWS == lowest) & in_column, jnp.left_shift(1, column), 0)


def _step(
    state: SpaceInvadersState, action: jax.Array, ramping: bool | jax.Array
) -> tuple[SpaceInvadersState, jax.Array, jax.Array]:
    """One ``act()`` of a state that is not yet terminal."""
    i32 = jnp.int32
    fire = (action == _FIRE) & (state.shot_timer == 0)
    pos = jnp.clip(state.pos + (action == _RIGHT).astype(i32) - (action == _LEFT).astype(i32), 0, SIZE - 1)
    cannon = jnp.left_shift(1, pos)
    shot_timer = jnp.where(fire, SHOT_COOL_DOWN, state.shot_timer)

    # Both bullet maps roll one row; the row that wraps around is cleared.
    f_bullet = state.f_bullet.at[SIZE - 1].set(state.f_bullet[SIZE - 1] | jnp.where(fire, cannon, 0))
    f_bullet = jnp.concatenate([f_bullet[1:], jnp.zeros(1, i32)])
    e_bullet = jnp.concatenate([jnp.zeros(1, i32), state.e_bullet[:-1]])
    terminal = (e_bullet[SIZE - 1] & cannon) != 0

    alien = state.alien
    terminal |= (alien[SIZE - 1] & cannon) != 0
    count = jax.lax.population_count(alien).sum(dtype=i32)
    move = state.alien_move_timer == 0
    moving_left = state.alien_dir < 0
    columns = _columns_hit(alien)
    at_edge = jnp.where(moving_left, columns & 1, (columns >> (SIZE - 1)) & (state.alien_dir > 0)) != 0
    descend = move & at_edge
    terminal |= descend & (alien[SIZE - 1] != 0)
    # Both moves are rolls: sideways ones wrap columns (never reached, the edge turns first) and the
    # descent wraps row 9 to row 0 (the episode has just ended then).
    sideways = jnp.where(
        moving_left,
        (alien >> 1) | ((alien & 1) << (SIZE - 1)),
        ((alien << 1) & _FULL_ROW) | (alien >> (SIZE - 1)),
    )
    alien = jnp.where(descend, jnp.roll(alien, 1), jnp.where(move, sideways, alien))
    alien_dir = jnp.where(descend, -state.alien_dir, state.alien_dir)
    alien_move_timer = jnp.where(move, jnp.minimum(count, state.enemy_move_interval), state.alien_move_timer)
    terminal |= (alien[SIZE - 1] & cannon) != 0

    shoot = state.alien_shot_timer == 0
    alien_shot_timer = jnp.where(shoot, ENEMY_SHOT_INTERVAL, state.alien_shot_timer)
    e_bullet |= jnp.where(shoot, _shot(alien, pos), 0)

    kills = alien & f_bullet
    reward = jax.lax.population_count(kills).sum(dtype=i32).astype(jnp.float32)
    alien &= ~kills
    f_bullet &= ~kills

    shot_timer -= (shot_timer > 0).astype(i32)
    cleared = ~(alien != 0).any()
    ramp = (cleared & (state.enemy_move_interval > MIN_ENEMY_MOVE_INTERVAL) & jnp.asarray(ramping)).astype(
        i32
    )
    new = SpaceInvadersState(
        pos=pos,
        alien=jnp.where(cleared, _WAVE, alien),
        f_bullet=f_bullet,
        e_bullet=e_bullet,
        alien_dir=alien_dir,
        enemy_move_interval=state.enemy_move_interval - ramp,
        alien_move_timer=alien_move_timer - 1,
        alien_shot_timer=alien_shot_timer - 1,
        ramp_index=state.ramp_index + ramp,
        shot_timer=shot_timer,
        terminal=terminal,
    )
    return new, reward, terminal


def step(
    state: SpaceInvadersState, action: jax.Array, draws: Any = (), ramping: bool | jax.Array = True
) -> tuple[SpaceInvadersState, jax.Array, jax.Array]:
    """One ``act()`` of the reference: ``(state, reward, terminal)``; a terminal state steps to itself
    with reward 0 (``draws`` is the empty pytree of ``draw_step``; ``ramping`` may also be traced)."""
    del draws
    new, reward, terminal = _step(state, jnp.asarray(action, jnp.int32), ramping)
    done = state.terminal
    new = jax.tree.map(lambda old, fresh: jnp.where(done, old, fresh), state, new)
    return new, jnp.where(done, 0.0, reward).astype(jnp.float32), done | terminal


def observe(state: SpaceInvadersState) -> jax.Array:
    """``bool[10, 10, 6]`` in the reference's channel order; the direction channels copy the alien map."""
    cannon = (_ROWS == SIZE - 1)[:, None] & (_COLUMNS == state.pos)[None, :]
    alien = to_grid(state.alien)
    left = state.alien_dir < 0
    return jnp.stack(
        [cannon, alien, alien & left, alien & ~left, to_grid(state.f_bullet), to_grid(state.e_bullet)],
        axis=-1,
    )


def from_minatar(game_env: Any) -> SpaceInvadersState:
    """The state of a reference ``minatar.environments.space_invaders.Env`` object."""
    bits = np.left_shift(1, np.arange(SIZE, dtype=np.int32))
    rows = lambda grid: (np.asarray(grid) != 0).astype(np.int32) @ bits  # noqa: E731
    scalar = np.int32
    state = SpaceInvadersState(
        pos=scalar(game_env.pos),
        alien=rows(game_env.alien_map),
        f_bullet=rows(game_env.f_bullet_map),
        e_bullet=rows(game_env.e_bullet_map),
        alien_dir=scalar(game_env.alien_dir),
        enemy_move_interval=scalar(game_env.enemy_move_interval),
        alien_move_timer=scalar(game_env.alien_move_timer),
        alien_shot_timer=scalar(game_env.alien_shot_timer),
        ramp_index=scalar(game_env.ramp_index),
        shot_timer=scalar(game_env.shot_timer),
        terminal=np.bool_(game_env.terminal),
    )
    return jax.device_put(state)


GAME = Game(
    name="space_invaders",
    title="SpaceInvaders",
    channels=CHANNELS,
    minimal_actions=MINIMAL_ACTIONS,
    reset=reset,
    step=step,
    reset_words=0,
    reset_draws=reset_draws,
    step_words=0,
    step_draws=step_draws,
    observe=observe,
    from_minatar=from_minatar,
    select_observation=True,
)
