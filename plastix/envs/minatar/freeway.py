"""MinAtar Freeway: a chicken crosses eight lanes of wrapping cars (+1 a crossing), 2,501 steps an episode.

Exact to minatar 1.0.15: the chicken moves at most once every 3 steps (its move timer), a car hits it
when the car is in the chicken's column 4 before or after the car's move, a crossing sends it back to
row 9 and re-draws every car's speed and direction (``randint(1, 6, 8)`` then ``rand(8)``), and the
episode terminates on the 2,501st ``act()``. Freeway has no difficulty ramp.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.envs.minatar.game import SIZE, Game, entry, lit_cells

CHANNELS = ("chicken", "car", "speed1", "speed2", "speed3", "speed4", "speed5")
N_CARS = 8  # car i drives on row i + 1
PLAYER_SPEED = 3
TIME_LIMIT = 2500  # terminal once the timer goes below 0, i.e. on act() number 2,501
CHICKEN_X = 4
_LANES = np.arange(1, N_CARS + 1, dtype=np.int32)


@struct.dataclass
class FreewayState:
    """One Freeway game: the chicken's row and timers, and each car's column, move timer and velocity."""

    pos: jax.Array  # int32, chicken row (column is always 4)
    move_timer: jax.Array  # int32, the chicken may move when 0
    terminate_timer: jax.Array  # int32, counts down from 2500
    car_x: jax.Array  # int32[8]
    car_timer: jax.Array  # int32[8], the car moves when 0
    car_v: jax.Array  # int32[8], signed speed: |v| steps between moves, sign the direction
    terminal: jax.Array  # bool


@struct.dataclass
class CarDraws:
    """One re-draw of the cars: ``randint(1, 6, 8)`` speeds and the signs of ``rand(8) - 0.5``."""

    speeds: jax.Array  # int32[8] in 1..5
    directions: jax.Array  # int32[8] in {-1, 1} (0 only if the reference drew exactly 0.5)


def reset(draws: CarDraws) -> FreewayState:
    """The first state: chicken on row 9, every car at column 0 with the drawn velocities."""
    v = jnp.asarray(draws.speeds, jnp.int32) * jnp.asarray(draws.directions, jnp.int32)
    return FreewayState(
        pos=jnp.int32(SIZE - 1),
        move_timer=jnp.int32(PLAYER_SPEED),
        terminate_timer=jnp.int32(TIME_LIMIT),
        car_x=jnp.zeros(N_CARS, jnp.int32),
        car_timer=jnp.abs(v),
        car_v=v,
        terminal=jnp.bool_(False),
    )


def step(
    state: FreewayState, action: jax.Array, draws: CarDraws, ramping: bool = True
) -> tuple[FreewayState, jax.Array, jax.Array]:
    """One ``act()``: move the chicken, score and re-draw the cars on a crossing, then move the cars."""
    del ramping  # Freeway ignores the difficulty ramp
    s = state
    action = jnp.asarray(action)
    can_move = s.move_timer == 0
    up = can_move & (action == 2)
    down = can_move & (action == 4)
    pos = jnp.clip(s.pos - up.astype(jnp.int32) + down.astype(jnp.int32), 0, SIZE - 1)
    move_timer = jnp.where(up | down, PLAYER_SPEED, s.move_timer)

    crossed = pos == 0
    drawn_v = jnp.asarray(draws.speeds, jnp.int32) * jnp.asarray(draws.directions, jnp.int32)
    car_v = jnp.where(crossed, drawn_v, s.car_v)
    car_timer = jnp.where(crossed, jnp.abs(drawn_v), s.car_timer)
    pos = jnp.where(crossed, SIZE - 1, pos)

    car_moves = car_timer == 0
    car_x = jnp.where(car_moves, _wrap(s.car_x + jnp.where(car_v > 0, 1, -1)), s.car_x)
    car_timer = jnp.where(car_moves, jnp.abs(car_v), car_timer - 1)
    # after a hit the chicken is on row 9, where no car drives, so lanes can be checked all at once
    hit = jnp.any((_LANES == pos) & ((s.car_x == CHICKEN_X) | (car_x == CHICKEN_X)))
    pos = jnp.where(hit, SIZE - 1, pos)

    terminate_timer = s.terminate_timer - 1
    moved = FreewayState(
        pos=pos,
        move_timer=move_timer - (move_timer > 0).astype(jnp.int32),
        terminate_timer=terminate_timer,
        car_x=car_x,
        car_timer=car_timer,
        car_v=car_v,
        terminal=terminate_timer < 0,
    )
    out = jax.tree.map(lambda old, new: jnp.where(s.terminal, old, new), s, moved)
    reward = jnp.where(s.terminal, 0.0, crossed.astype(jnp.float32))
    return out, reward, out.terminal


def _wrap(x: jax.Array) -> jax.Array:
    """A column at most one step off the grid wrapped onto it: ``x % 10`` without the remainder, which
    XLA counts as costly."""
    return jnp.where(x < 0, x + SIZE, jnp.where(x >= SIZE, x - SIZE, x))


def reset_draws(words: jax.Array) -> CarDraws:
    """Eight speeds uniform on 1..5 and eight directions uniform on {-1, 1}, from one word each."""
    # speed from the top 29 bits by multiply-shift (off uniform by < 2**-29), direction from bit 0
    speeds = 1 + (((words >> 3) * 5) >> 29).astype(jnp.int32)
    directions = 2 * (words & 1).astype(jnp.int32) - 1
    return CarDraws(speeds=speeds, directions=directions)


def step_draws(words: jax.Array, state: FreewayState) -> CarDraws:
    """A car re-draw, made every step for a fixed shape; ``step`` uses it only on a crossing."""
    del state
    return reset_draws(words)


def observe(state: FreewayState) -> jax.Array:
    """``bool[10, 10, 7]``: chicken, cars, and each car's trail cell behind it in its speed's channel."""
    back_x = _wrap(state.car_x - jnp.where(state.car_v > 0, 1, -1))
    # the reference's trail channel is a loop variable: a speed-0 car reuses the previous car's channel
    speed = jnp.abs(state.car_v)
    channel, channels = jnp.int32(0), []
    for car in range(N_CARS):
        channel = jnp.where(speed[car] > 0, speed[car], channel)
        channels.append(channel)
    trail_speed = jnp.stack(channels)
    c = len(CHANNELS)
    trail = jnp.where(trail_speed > 0, entry(_LANES, back_x, 1 + trail_speed, c), SIZE * SIZE * c)
    lit = jnp.concatenate([entry(state.pos, CHICKEN_X, 0, c)[None], entry(_LANES, state.car_x, 1, c), trail])
    return lit_cells(lit, c)


def from_minatar(env: Any) -> FreewayState:
    """The state of a reference ``minatar.environments.freeway.Env``."""
    cars = np.asarray(env.cars, np.int64)
    if not np.array_equal(cars[:, 1], _LANES):
        raise ValueError(f"car i must drive on row i + 1, got rows {cars[:, 1].tolist()}")
    return FreewayState(
        pos=jnp.int32(env.pos),
        move_timer=jnp.int32(env.move_timer),
        terminate_timer=jnp.int32(env.terminate_timer),
        car_x=jnp.asarray(cars[:, 0], jnp.int32),
        car_timer=jnp.asarray(cars[:, 2], jnp.int32),
        car_v=jnp.asarray(cars[:, 3], jnp.int32),
        terminal=jnp.bool_(env.terminal),
    )


GAME = Game(
    name="freeway",
    title="Freeway",
    channels=CHANNELS,
    minimal_actions=(0, 2, 4),
    reset=reset,
    step=step,
    reset_words=N_CARS,
    reset_draws=reset_draws,
    step_words=N_CARS,
    step_draws=step_draws,
    observe=observe,
    from_minatar=from_minatar,
)
