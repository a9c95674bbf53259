"""MinAtar Asterix (Young & Tian 2019), exact to minatar 1.0.15: the player dodges enemies and collects
gold that cross rows 1..8 from the sides.

Each of the 8 rows holds at most one entity (its slot), so the state keeps fixed ``[8]`` arrays indexed by
slot, whose entity is on row ``slot + 1``. A spawn fills the ``rank``-th free slot (in slot order), as the
reference's ``randint`` over its list of free slots does; with no free slot nothing spawns (gymnax deletes
an entity there instead). Collisions are checked after the player moves and again after entities move.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.envs.minatar.game import SIZE, Game, entry, lit_cells

SLOTS = 8
CHANNELS = 4
RAMP_INTERVAL = 100
INIT_SPAWN_SPEED = 10
INIT_MOVE_SPEED = 5
GOLD_BELOW = 715827883  # ceil(2**31 / 3): 31 random bits fall below it with probability 1/3 + 1.6e-10
_ROWS = np.arange(1, SLOTS + 1, dtype=np.int32)


@struct.dataclass
class AsterixState:
    """One Asterix game: the player, the 8 row slots, and the spawn / move / ramp timers."""

    player_x: jax.Array  # int32, 0..9
    player_y: jax.Array  # int32, 1..8
    active: jax.Array  # bool[8]: the slot holds an entity
    x: jax.Array  # int32[8]: its column (meaningless where not active)
    right: jax.Array  # bool[8]: it entered at column 0 and moves right
    gold: jax.Array  # bool[8]: gold (+1 when touched) rather than an enemy (ends the episode)
    spawn_timer: jax.Array  # int32: a spawn happens on a step that starts at 0
    spawn_speed: jax.Array  # int32
    move_timer: jax.Array  # int32: entities move on a step that starts at 0
    move_speed: jax.Array  # int32
    ramp_timer: jax.Array  # int32
    ramp_index: jax.Array  # int32
    terminal: jax.Array  # bool


@struct.dataclass
class AsterixDraws:
    """The draws of one step, used only when it spawns: the reference's two uniforms as the booleans it
    derives from them, and its integer index into the list of free slots."""

    right: jax.Array  # bool: uniform < 1/2, the entity enters at column 0 moving right
    gold: jax.Array  # bool: uniform < 1/3
    rank: jax.Array  # int32: which free slot, counted in slot order (ignored when none is free)


def _int(value: int) -> jax.Array:
    return jnp.asarray(value, jnp.int32)


def reset(draws: jax.Array | None = None) -> AsterixState:
    """The start of an episode (no randomness: ``draws`` is ``draw_reset``'s empty array)."""
    del draws
    return AsterixState(
        player_x=_int(5),
        player_y=_int(5),
        active=jnp.zeros(SLOTS, jnp.bool_),
        x=jnp.zeros(SLOTS, jnp.int32),
        right=jnp.zeros(SLOTS, jnp.bool_),
        gold=jnp.zeros(SLOTS, jnp.bool_),
        spawn_timer=_int(INIT_SPAWN_SPEED),
        spawn_speed=_int(INIT_SPAWN_SPEED),
        move_timer=_int(INIT_MOVE_SPEED),
        move_speed=_int(INIT_MOVE_SPEED),
        ramp_timer=_int(RAMP_INTERVAL),
        ramp_index=_int(0),
        terminal=jnp.asarray(False),
    )


def reset_draws(words: jax.Array) -> jax.Array:
    """A reset draws nothing; an empty array, so a vmapped ``reset`` still has a batch axis."""
    del words
    return jnp.zeros((0,), jnp.bool_)


def step_draws(words: jax.Array, state: AsterixState) -> AsterixDraws:
    """One step's draws from two words: side with p 1/2 (the top bit of a word), gold with p 1/3 (its
    other 31 bits), and a rank uniform over the free slots of ``state`` (those a spawn at the start of
    the step chooses from) from the second word."""
    side, slot = words[0], words[1]
    n_free = jnp.sum(~state.active).astype(jnp.uint32)
    # floor(slot * n_free / 2**32), exactly, in 32-bit arithmetic
    rank = ((slot >> 16) * n_free + (((slot & 0xFFFF) * n_free) >> 16)) >> 16
    return AsterixDraws(
        right=side >= jnp.uint32(1 << 31),
        gold=(side & 0x7FFFFFFF) < jnp.uint32(GOLD_BELOW),
        rank=rank.astype(jnp.int32),
    )


def step(
    state: AsterixState, action: jax.Array, draws: AsterixDraws, ramping: bool
) -> tuple[AsterixState, jax.Array, jax.Array]:
    """One ``act()``: spawn, move the player, collide, move entities, collide again, tick and ramp."""
    spawning = state.spawn_timer == 0
    free = ~state.active
    placed = spawning & free & (jnp.cumsum(free) - 1 == draws.rank)
    active = state.active | placed
    right = jnp.where(placed, draws.right, state.right)
    gold = jnp.where(placed, draws.gold, state.gold)
    x = jnp.where(placed, jnp.where(draws.right, 0, SIZE - 1), state.x)
    spawn_timer = jnp.where(spawning, state.spawn_speed, state.spawn_timer) - 1

    px, py = state.player_x, state.player_y
    px = jnp.where(action == 1, jnp.maximum(0, px - 1), jnp.where(action == 3, jnp.minimum(9, px + 1), px))
    py = jnp.where(action == 2, jnp.maximum(1, py - 1), jnp.where(action == 4, jnp.minimum(8, py + 1), py))
    in_row = _ROWS == py

    hit = active & in_row & (x == px)
    reward = jnp.sum(hit & gold)
    dead = jnp.any(hit & ~gold)
    active = active & ~(hit & gold)

    moving = state.move_timer == 0
    x = jnp.where(moving & active, x + jnp.where(right, 1, -1), x)
    active = active & (x >= 0) & (x <= SIZE - 1)
    hit = moving & active & in_row & (x == px)
    reward = reward + jnp.sum(hit & gold)
    dead = dead | jnp.any(hit & ~gold)
    active = active & ~(hit & gold)
    move_timer = jnp.where(moving, state.move_speed, state.move_timer) - 1

    spawn_speed, move_speed = state.spawn_speed, state.move_speed
    ramp_timer, ramp_index = state.ramp_timer, state.ramp_index
    if ramping:
        eligible = (spawn_speed > 1) | (move_speed > 1)
        ramp = eligible & (ramp_timer < 0)
        move_speed = move_speed - (ramp & (move_speed > 1) & (ramp_index % 2 != 0))
        spawn_speed = spawn_speed - (ramp & (spawn_speed > 1))
        ramp_index = ramp_index + ramp
        ramp_timer = jnp.where(ramp, RAMP_INTERVAL, ramp_timer - eligible)

    new = AsterixState(
        player_x=px,
        player_y=py,
        active=active,
        x=x,
        right=right,
        gold=gold,
        spawn_timer=spawn_timer,
        spawn_speed=spawn_speed,
        move_timer=move_timer,
        move_speed=move_speed,
        ramp_timer=ramp_timer,
        ramp_index=ramp_index,
        terminal=dead,
    )
    done = state.terminal
    new = jax.tree.map(lambda old, upd: jnp.where(done, old, upd), state, new)
    reward = jnp.where(done, 0, reward).astype(jnp.float32)
    return new, reward, new.terminal | done


def observe(state: AsterixState) -> jax.Array:
    """``bool[10, 10, 4]``: player, enemy, trail (the cell behind each entity), gold."""
    # a scatter of the <= 17 lit cells: XLA:CPU computes a broadcast-and-compare grid far slower, and the
    # barrier keeps it from re-fusing the step that produced ``state`` into every index
    state = jax.lax.optimization_barrier(state)
    cell = lambda row, col, channel: entry(row, col, channel, CHANNELS)
    off = SIZE * SIZE * CHANNELS  # dropped
    back = jnp.where(state.right, state.x - 1, state.x + 1)
    entity = jnp.where(state.active, cell(_ROWS, state.x, jnp.where(state.gold, 3, 1)), off)
    trail = jnp.where(state.active & (back >= 0) & (back < SIZE), cell(_ROWS, back, 2), off)
    lit = jnp.concatenate([cell(state.player_y, state.player_x, 0)[None], entity, trail])
    return lit_cells(lit, CHANNELS)


def from_minatar(game_env) -> AsterixState:
    """The state of a reference ``minatar.environments.asterix.Env``."""
    entities = game_env.entities
    if len(entities) != SLOTS:
        raise ValueError(f"Asterix has {SLOTS} entity slots, got {len(entities)}")
    for slot, entity in enumerate(entities):
        if entity is not None and entity[1] != slot + 1:
            raise ValueError(f"entity in slot {slot} is on row {entity[1]}, not {slot + 1}")
    present = [entity is not None for entity in entities]
    field = lambda i: [entity[i] if entity is not None else 0 for entity in entities]
    return AsterixState(
        player_x=_int(game_env.player_x),
        player_y=_int(game_env.player_y),
        active=jnp.asarray(present, jnp.bool_),
        x=jnp.asarray(field(0), jnp.int32),
        right=jnp.asarray([bool(v) for v in field(2)], jnp.bool_),
        gold=jnp.asarray([bool(v) for v in field(3)], jnp.bool_),
        spawn_timer=_int(game_env.spawn_timer),
        spawn_speed=_int(game_env.spawn_speed),
        move_timer=_int(game_env.move_timer),
        move_speed=_int(game_env.move_speed),
        ramp_timer=_int(game_env.ramp_timer),
        ramp_index=_int(game_env.ramp_index),
        terminal=jnp.asarray(bool(game_env.terminal)),
    )


GAME = Game(
    name="asterix",
    title="Asterix",
    channels=("player", "enemy", "trail", "gold"),
    minimal_actions=(0, 1, 2, 3, 4),
    reset=reset,
    step=step,
    reset_words=0,
    reset_draws=reset_draws,
    step_words=2,
    step_draws=step_draws,
    observe=observe,
    from_minatar=from_minatar,
)
