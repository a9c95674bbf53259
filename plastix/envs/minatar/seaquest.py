"""MinAtar Seaquest (Young & Tian 2019), exact to minatar 1.0.15: the player's submarine shoots enemy
fish and subs, picks up divers and surfaces with them to refill its oxygen.

The reference keeps lists of entities that it walks newest first and edits while walking. Here each
kind lives in fixed slots with an ``alive`` mask, the walks are vectorised where their order cannot
matter, and where it can the order is kept:

- enemies: fish and subs share one ``[ENEMY_SLOTS]`` table; ``enemy_order`` stamps each with the spawn
  count, so its age (spawns since) gives the reference's list order, oldest first. A friendly bullet
  kills the oldest fish on its cell, else the oldest sub; an enemy moving onto friendly bullets dies
  with the oldest of them, the newest such enemy first (the walk pairs them so). Nothing else an enemy
  does depends on another, so both walks are whole-table operations;
- friendly bullets and divers: two slots each, slot 0 the older, walked slot 1 first;
- enemy bullets only ever meet the player, so they form a set: a 10-bit mask per row and direction.
Removing by value while walking (the reference's ``list.remove``) can only hit an equal entry that has
not been walked yet; for bullets and divers that leaves the same values, and an enemy is only removed
after its move where no unwalked enemy can equal it (it would be on a bullet, which the bullet walk
rules out), so the lists above are exact.

Capacities, for every state reachable from a reset. Friendly bullets: one shot per 5 steps and at most 9
steps in flight, so at most one is alive when the next is fired. Divers: one spawn per 30 steps and at
most 59 steps on screen, so at most one is alive when the next spawns. Enemies: a spawn every
``spawn_speed`` steps; an enemy lives at most 59 steps (10 moves, one per ``move_speed + 1 <= 6`` steps)
and at most 29 if spawned at move speed 2, the speed from the sixth ramp on, by when the spawn speed is
14 or less. A spawn before that ramp is followed by a gap of >= 15 steps, so at a spawn at most 4 of
those and 29 later ones are alive, 32 with the new one: ``ENEMY_SLOTS``. Ages stay below 60, so a
wrapping ``uint8`` count orders them.

Quirks kept: surfacing with 6 divers rewards ``oxygen * 10 // 200`` (on top of the step's kills) and
leaves -1 divers (later surfacings neither end the episode nor reward, the count keeps falling, the
gauge shows none); the episode ends when oxygen <= 0 is seen before this step's decrement; surfacing
with no diver ends it without refilling oxygen; a sub that leaves the screen or dies moving onto a
bullet still runs its shot timer and can fire (a shot from off screen never lands); each surfacing
with >= 1 diver ramps (the move speed drops when the old ramp index is odd).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.envs.minatar.game import SIZE, Game

ENEMY_SLOTS = 32
MAX_OXYGEN = 200
INIT_SPAWN_SPEED = 20
INIT_MOVE_SPEED = 5
DIVER_SPAWN_SPEED = 30
DIVER_MOVE_INTERVAL = 5
SHOT_COOL_DOWN = 5
ENEMY_SHOT_INTERVAL = 10
MAX_DIVERS = 6
SUB_BELOW = 1431655766  # ceil(2**32 / 3): a uint32 below it has probability 1/3 (+1.6e-10)
_ROWS = jnp.arange(SIZE, dtype=jnp.int32)
_COLS = jnp.arange(SIZE, dtype=jnp.int32)
_SLOTS = jnp.arange(ENEMY_SLOTS, dtype=jnp.int32)
_FULL_ROW = (1 << SIZE) - 1


@struct.dataclass
class SeaquestState:
    """One Seaquest game: the player, its two bullet slots, the enemy table, the two diver slots, the
    enemy bullets' row masks and the timers."""

    sub_x: jax.Array  # int32, 0..9
    sub_y: jax.Array  # int32, 0..8 (0: surfaced)
    sub_right: jax.Array  # bool: facing right (its back is the cell to its left)
    oxygen: jax.Array  # int32
    divers_held: jax.Array  # int32: rescued divers, -1 and below after a 6-diver surfacing
    surfaced: jax.Array  # bool: on row 0 since the last surfacing (no new surfacing until it dives)
    terminal: jax.Array  # bool
    spawn_speed: jax.Array  # int32
    spawn_timer: jax.Array  # int32: an enemy spawns on a step that starts at 0
    diver_spawn_timer: jax.Array  # int32: a diver spawns on a step that starts at 0
    move_speed: jax.Array  # int32
    ramp_index: jax.Array  # int32
    shot_timer: jax.Array  # int32: the player can fire on a step that starts at 0
    bullet_alive: jax.Array  # bool[2], slot 0 fired before slot 1
    bullet_x: jax.Array  # int32[2]
    bullet_y: jax.Array  # int32[2]
    bullet_right: jax.Array  # bool[2]
    enemy_alive: jax.Array  # bool[ENEMY_SLOTS]
    enemy_sub: jax.Array  # bool[ENEMY_SLOTS]: a sub (shoots) rather than a fish
    enemy_x: jax.Array  # int8[ENEMY_SLOTS]
    enemy_y: jax.Array  # int8[ENEMY_SLOTS], 1..8
    enemy_right: jax.Array  # bool[ENEMY_SLOTS]: entered at column 0, moves right
    enemy_timer: jax.Array  # int8[ENEMY_SLOTS]: moves on a step that starts at 0
    enemy_shot: jax.Array  # int8[ENEMY_SLOTS]: a sub fires on a step that starts at 0
    enemy_order: jax.Array  # uint8[ENEMY_SLOTS]: ``spawned`` at its spawn (so its age gives list order)
    spawned: jax.Array  # uint8: enemies spawned this episode, modulo 256
    diver_alive: jax.Array  # bool[2], slot 0 spawned before slot 1
    diver_x: jax.Array  # int32[2]
    diver_y: jax.Array  # int32[2]
    diver_right: jax.Array  # bool[2]
    diver_timer: jax.Array  # int32[2]
    shots_right: jax.Array  # int32[10]: row masks (bit x: column x) of enemy bullets moving right
    shots_left: jax.Array  # int32[10]: the same, moving left


@struct.dataclass
class SeaquestDraws:
    """The draws of one step, as the booleans the reference derives from its uniforms; the enemy's are
    used on a step that spawns an enemy (even when the spawn is then suppressed), the diver's on a step
    that spawns a diver."""

    enemy_right: jax.Array  # bool: uniform < 1/2, enters at column 0 moving right
    enemy_sub: jax.Array  # bool: uniform < 1/3, a sub rather than a fish
    enemy_row: jax.Array  # int32, 1..8
    diver_right: jax.Array  # bool: uniform < 1/2
    diver_row: jax.Array  # int32, 1..8


def _int(value) -> jax.Array:
    return jnp.asarray(value, jnp.int32)


def _i8(value) -> jax.Array:
    return jnp.asarray(value, jnp.int8)


def reset(draws: jax.Array | None = None) -> SeaquestState:
    """The start of an episode (no randomness: ``draws`` is ``draw_reset``'s empty array)."""
    del draws
    two_int, two_bool = jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.bool_)
    slots_int, slots_bool = jnp.zeros(ENEMY_SLOTS, jnp.int8), jnp.zeros(ENEMY_SLOTS, jnp.bool_)
    return SeaquestState(
        sub_x=_int(5), sub_y=_int(0), sub_right=jnp.asarray(False), oxygen=_int(MAX_OXYGEN),
        divers_held=_int(0), surfaced=jnp.asarray(True), terminal=jnp.asarray(False),
        spawn_speed=_int(INIT_SPAWN_SPEED), spawn_timer=_int(INIT_SPAWN_SPEED),
        diver_spawn_timer=_int(DIVER_SPAWN_SPEED), move_speed=_int(INIT_MOVE_SPEED), ramp_index=_int(0),
        shot_timer=_int(0),
        bullet_alive=two_bool, bullet_x=two_int, bullet_y=two_int, bullet_right=two_bool,
        enemy_alive=slots_bool, enemy_sub=slots_bool, enemy_x=slots_int, enemy_y=slots_int,
        enemy_right=slots_bool, enemy_timer=slots_int, enemy_shot=slots_int,
        enemy_order=jnp.zeros(ENEMY_SLOTS, jnp.uint8), spawned=jnp.asarray(0, jnp.uint8),
        diver_alive=two_bool, diver_x=two_int, diver_y=two_int, diver_right=two_bool, diver_timer=two_int,
        shots_right=jnp.zeros(SIZE, jnp.int32), shots_left=jnp.zeros(SIZE, jnp.int32),
    )


def reset_draws(words: jax.Array) -> jax.Array:
    """A reset draws nothing; an empty array, so a vmapped ``reset`` still has a batch axis."""
    del words
    return jnp.zeros((0,), jnp.bool_)


def step_draws(words: jax.Array, state: SeaquestState) -> SeaquestDraws:
    """One step's draws from two words: sides with p 1/2, sub with p 1/3, rows uniform on 1..8."""
    del state
    low = words[1]
    row = lambda shift: ((low >> shift) & 7).astype(jnp.int32) + 1
    return SeaquestDraws(
        enemy_right=(low & 1) == 1,
        enemy_sub=words[0] < jnp.uint32(SUB_BELOW),
        enemy_row=row(1),
        diver_right=((low >> 4) & 1) == 1,
        diver_row=row(5),
    )


def _step_x(x: jax.Array, right: jax.Array) -> jax.Array:
    return x + jnp.where(right, 1, -1).astype(x.dtype)


def _on_screen(x: jax.Array) -> jax.Array:
    return (x >= 0) & (x < SIZE)


def _push(alive: jax.Array, fields: tuple, new: tuple, do: jax.Array) -> tuple[jax.Array, tuple]:
    """A two-slot list with an entity appended when ``do``: the one alive entry (the capacity argument
    says there is at most one) becomes slot 0, the new one slot 1."""
    keep = alive[1]
    out = tuple(
        jnp.where(do, jnp.stack([jnp.where(keep, f[1], f[0]), jnp.asarray(n, f.dtype)]), f)
        for f, n in zip(fields, new, strict=True)
    )
    return jnp.where(do, jnp.stack([alive[0] | alive[1], jnp.asarray(True)]), alive), out


def _pick(candidates: jax.Array, age: jax.Array, oldest: bool) -> jax.Array:
    """The one candidate slot of greatest (``oldest``) or least age, as a mask (all False if none)."""
    if oldest:
        return candidates & (age == jnp.max(jnp.where(candidates, age, 0)))
    return candidates & (age == jnp.min(jnp.where(candidates, age, 255)))


def _ages(s: SeaquestState) -> jax.Array:
    """Spawns since each enemy's own (uint8, wrapping: the alive ones spawned fewer than 60 spawns ago)."""
    return s.spawned - s.enemy_order


def _spawn(s: SeaquestState, draws: SeaquestDraws) -> SeaquestState:
    """An enemy (unless its row holds one going the other way) and a diver, when their timers are up."""
    spawning = s.spawn_timer == 0
    row = draws.enemy_row.astype(jnp.int8)
    clash = jnp.any(s.enemy_alive & (s.enemy_y == row) & (s.enemy_right != draws.enemy_right))
    free = ~s.enemy_alive
    first_free = jnp.min(jnp.where(free, _SLOTS, ENEMY_SLOTS))
    placed = (_SLOTS == first_free) & spawning & ~clash
    put = lambda new, old: jnp.where(placed, jnp.asarray(new, old.dtype), old)
    diving = s.diver_spawn_timer == 0
    d_alive, (d_x, d_y, d_right, d_timer) = _push(
        s.diver_alive, (s.diver_x, s.diver_y, s.diver_right, s.diver_timer),
        (jnp.where(draws.diver_right, 0, SIZE - 1), draws.diver_row, draws.diver_right,
         DIVER_MOVE_INTERVAL),
        diving,
    )
    return s.replace(
        enemy_alive=s.enemy_alive | placed,
        enemy_sub=put(draws.enemy_sub, s.enemy_sub),
        enemy_x=put(jnp.where(draws.enemy_right, 0, SIZE - 1), s.enemy_x),
        enemy_y=put(row, s.enemy_y),
        enemy_right=put(draws.enemy_right, s.enemy_right),
        enemy_timer=put(s.move_speed, s.enemy_timer),
        enemy_shot=put(ENEMY_SHOT_INTERVAL, s.enemy_shot),
        enemy_order=put(s.spawned, s.enemy_order),
        spawned=s.spawned + jnp.any(placed).astype(jnp.uint8),
        spawn_timer=jnp.where(spawning, s.spawn_speed, s.spawn_timer),
        diver_alive=d_alive, diver_x=d_x, diver_y=d_y, diver_right=d_right, diver_timer=d_timer,
        diver_spawn_timer=jnp.where(diving, DIVER_SPAWN_SPEED, s.diver_spawn_timer),
    )


def _act(s: SeaquestState, action: jax.Array) -> SeaquestState:
    """The player fires (when its cool-down is over) or moves."""
    fire = (action == 5) & (s.shot_timer == 0)
    b_alive, (b_x, b_y, b_right) = _push(
        s.bullet_alive, (s.bullet_x, s.bullet_y, s.bullet_right), (s.sub_x, s.sub_y, s.sub_right), fire
    )
    x, y = s.sub_x, s.sub_y
    return s.replace(
        bullet_alive=b_alive, bullet_x=b_x, bullet_y=b_y, bullet_right=b_right,
        shot_timer=jnp.where(fire, SHOT_COOL_DOWN, s.shot_timer),
        sub_x=jnp.where(action == 1, jnp.maximum(0, x - 1),
                        jnp.where(action == 3, jnp.minimum(SIZE - 1, x + 1), x)),
        sub_right=jnp.where(action == 1, False, jnp.where(action == 3, True, s.sub_right)),
        sub_y=jnp.where(action == 2, jnp.maximum(0, y - 1), jnp.where(action == 4, jnp.minimum(8, y + 1), y)),
    )


def _fly(s: SeaquestState) -> tuple[SeaquestState, jax.Array]:
    """Friendly bullets, newest first: each moves, then kills the oldest fish on its cell, else the oldest
    sub. Returns the kills."""
    alive, e_alive = list(s.bullet_alive), s.enemy_alive
    x = _step_x(s.bullet_x, s.bullet_right)
    age = _ages(s)
    kills = jnp.int32(0)
    for b in (1, 0):
        flying = alive[b] & _on_screen(x[b])
        there = e_alive & (s.enemy_x == x[b].astype(jnp.int8)) & (s.enemy_y == s.bullet_y[b].astype(jnp.int8))
        fish = there & ~s.enemy_sub
        victim = _pick(jnp.where(jnp.any(fish), fish, there), age, oldest=True) & flying
        hit = jnp.any(victim)
        e_alive = e_alive & ~victim
        kills = kills + hit
        alive[b] = flying & ~hit
    return s.replace(bullet_alive=jnp.stack(alive), bullet_x=x, enemy_alive=e_alive), kills


def _rescue(s: SeaquestState) -> SeaquestState:
    """Divers, newest first: picked up on the player's cell while it holds fewer than 6, else moved on
    their timer (and picked up if that brings them onto the player)."""
    px, py, held = s.sub_x, s.sub_y, s.divers_held
    alive, x, timer = list(s.diver_alive), list(s.diver_x), list(s.diver_timer)
    for d in (1, 0):
        here = alive[d] & (x[d] == px) & (s.diver_y[d] == py) & (held < MAX_DIVERS)
        moving = alive[d] & ~here & (timer[d] == 0)
        x[d] = jnp.where(moving, _step_x(x[d], s.diver_right[d]), x[d])
        gone = moving & ~_on_screen(x[d])
        arrives = moving & ~gone & (x[d] == px) & (s.diver_y[d] == py) & (held < MAX_DIVERS)
        held = held + (here | arrives)
        timer[d] = jnp.where(moving, DIVER_MOVE_INTERVAL, timer[d] - (alive[d] & ~here))
        alive[d] = alive[d] & ~(here | gone | arrives)
    return s.replace(diver_alive=jnp.stack(alive), diver_x=jnp.stack(x), diver_timer=jnp.stack(timer),
                     divers_held=held)


def _march(s: SeaquestState, movers: jax.Array) -> tuple[SeaquestState, jax.Array, jax.Array, jax.Array]:
    """The reference's walk over the enemies of one kind (``movers``): each collides with the player,
    moves when its timer is up, leaves the screen, or dies on a friendly bullet with it (the oldest
    bullet on the cell goes to the newest enemy landing there, as the walk pairs them). Returns the
    state (those that left or died removed), the kills and whether the player was hit."""
    px, py = s.sub_x.astype(jnp.int8), s.sub_y.astype(jnp.int8)
    hit = jnp.any(movers & (s.enemy_x == px) & (s.enemy_y == py))
    moving = movers & (s.enemy_timer == 0)
    x = jnp.where(moving, _step_x(s.enemy_x, s.enemy_right), s.enemy_x)
    timer = jnp.where(moving, s.move_speed.astype(jnp.int8), s.enemy_timer - movers.astype(jnp.int8))
    left = moving & ~_on_screen(x)
    onto_player = moving & ~left & (x == px) & (s.enemy_y == py)
    landed = moving & ~left & ~onto_player
    age = _ages(s)
    b_alive = list(s.bullet_alive)
    killed = jnp.zeros_like(movers)
    for b in (0, 1):
        bx, by = s.bullet_x[b].astype(jnp.int8), s.bullet_y[b].astype(jnp.int8)
        victim = _pick(landed & ~killed & (x == bx) & (s.enemy_y == by), age, oldest=False) & b_alive[b]
        killed = killed | victim
        b_alive[b] = b_alive[b] & ~jnp.any(victim)
    new = s.replace(enemy_x=x, enemy_timer=timer, enemy_alive=s.enemy_alive & ~(left | killed),
                    bullet_alive=jnp.stack(b_alive))
    return new, jnp.sum(killed, dtype=jnp.int32), hit | jnp.any(onto_player)


def _subs(s: SeaquestState) -> tuple[SeaquestState, jax.Array, jax.Array]:
    """Enemy subs march; every one that started the walk runs its shot timer, also one that has just left
    the screen or died, and fires from where it now is (a shot from off screen never lands)."""
    subs = s.enemy_alive & s.enemy_sub
    s, kills, hit = _march(s, subs)
    firing = subs & (s.enemy_shot == 0)
    shot = jnp.where(firing, jnp.int8(ENEMY_SHOT_INTERVAL), s.enemy_shot - subs.astype(jnp.int8))
    return s.replace(
        enemy_shot=shot,
        shots_right=s.shots_right | _row_masks(firing & s.enemy_right, s.enemy_x, s.enemy_y),
        shots_left=s.shots_left | _row_masks(firing & ~s.enemy_right, s.enemy_x, s.enemy_y),
    ), kills, hit


def _shots(s: SeaquestState) -> tuple[SeaquestState, jax.Array]:
    """Enemy bullets move one cell and hit the player before or after; those leaving the screen vanish."""
    on_player = lambda masks: jnp.any((_ROWS == s.sub_y) & (((masks >> s.sub_x) & 1) != 0))
    right, left = (s.shots_right << 1) & _FULL_ROW, s.shots_left >> 1
    hit = on_player(s.shots_right | s.shots_left) | on_player(right | left)
    return s.replace(shots_right=right, shots_left=left), hit


def _breathe(s: SeaquestState, ramping: bool | jax.Array) -> tuple[SeaquestState, jax.Array, jax.Array]:
    """Timers, oxygen (<= 0 seen before this step's decrement ends the episode) and surfacing: with no
    diver it ends the episode, with some it refills oxygen, drops one diver (all 6 for a reward) and
    ramps. Returns the state, the reward and whether the episode ended."""
    below = s.sub_y > 0
    oxygen = jnp.where(below, s.oxygen - 1, s.oxygen)
    arriving = ~below & ~s.surfaced
    held = s.divers_held
    rescue = arriving & (held != 0)
    full = rescue & (held == MAX_DIVERS)
    reward = jnp.where(full, oxygen * 10 // MAX_OXYGEN, 0)
    spawn_speed, move_speed, ramp_index = s.spawn_speed, s.move_speed, s.ramp_index
    ramp = rescue & ramping & ((spawn_speed > 1) | (move_speed > 2))
    move_speed = move_speed - (ramp & (move_speed > 2) & (ramp_index % 2 != 0))
    spawn_speed = spawn_speed - (ramp & (spawn_speed > 1))
    ramp_index = ramp_index + ramp
    tick = lambda t: t - (t > 0)
    return s.replace(
        spawn_timer=tick(s.spawn_timer), diver_spawn_timer=tick(s.diver_spawn_timer),
        shot_timer=tick(s.shot_timer),
        oxygen=jnp.where(rescue, MAX_OXYGEN, oxygen),
        divers_held=jnp.where(rescue, jnp.where(full, 0, held) - 1, held),
        surfaced=jnp.where(below, False, s.surfaced | rescue),
        spawn_speed=spawn_speed, move_speed=move_speed, ramp_index=ramp_index,
    ), reward, (s.oxygen <= 0) | (arriving & (held == 0))


def step(
    state: SeaquestState, action: jax.Array, draws: SeaquestDraws, ramping: bool | jax.Array
) -> tuple[SeaquestState, jax.Array, jax.Array]:
    """One ``act()``: spawns, the player's action, then the reference's walks in its order (friendly
    bullets, divers, subs, enemy bullets, fish), timers, oxygen and surfacing. ``ramping`` may also be
    a traced bool (one compiled step for both settings)."""
    # barriers between the stages keep XLA from fusing (and re-computing) one stage into the uses of its
    # results: faster to run and to compile
    fence = jax.lax.optimization_barrier
    s = fence(_act(_spawn(state, draws), action))
    s, reward = fence(_fly(s))
    s = fence(_rescue(s))
    s, kills, hit = fence(_subs(s))
    s, shot = fence(_shots(s))
    s, fish_kills, eaten = fence(_march(s, s.enemy_alive & ~s.enemy_sub))
    s, bonus, ended = _breathe(s, ramping)
    s = s.replace(terminal=hit | shot | eaten | ended)
    done = state.terminal
    new = fence(jax.tree.map(lambda old, upd: jnp.where(done, old, upd), state, s))
    reward = jnp.where(done, 0, reward + kills + fish_kills + bonus).astype(jnp.float32)
    return new, reward, new.terminal


def _row_masks(present: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
    """``int32[10]``: bit ``x`` of row ``y`` set for each present entity (columns off screen dropped)."""
    column = jnp.clip(x, 0, SIZE - 1).astype(jnp.int32)
    bits = jnp.where(present & _on_screen(x), jnp.left_shift(1, column), 0)
    per_row = jnp.where(y[:, None] == _ROWS[None, :], bits[:, None], 0)
    return jax.lax.reduce(per_row, np.int32(0), jax.lax.bitwise_or, (0,))


def observe(state: SeaquestState) -> jax.Array:
    """``bool[10, 10, 10]``: sub_front, sub_back, friendly_bullet, trail, enemy_bullet, enemy_fish,
    enemy_sub, oxygen_guage, diver_guage, diver (the reference's channels and order)."""
    s = state
    on_player_row = lambda x: jnp.where(_ROWS == s.sub_y, jnp.left_shift(1, x), 0)
    back = jnp.where(s.sub_right, s.sub_x - 1, s.sub_x + 1) % SIZE  # column -1 is 9, as numpy indexes
    enemy_back = jnp.where(s.enemy_right, s.enemy_x - 1, s.enemy_x + 1)
    diver_back = jnp.where(s.diver_right, s.diver_x - 1, s.diver_x + 1)
    trail = _row_masks(s.enemy_alive, enemy_back, s.enemy_y) | _row_masks(s.diver_alive, diver_back,
                                                                          s.diver_y)
    bottom = _ROWS == SIZE - 1
    oxygen = (1 << jnp.clip(jnp.maximum(0, s.oxygen) * 10 // MAX_OXYGEN, 0, SIZE)) - 1
    gauge_from = jnp.clip(SIZE - 1 - s.divers_held, 0, SIZE - 1)
    gauge = ((1 << (SIZE - 1)) - 1) & ~((1 << gauge_from) - 1)
    masks = jnp.stack([
        on_player_row(s.sub_x),
        on_player_row(back),
        _row_masks(s.bullet_alive, s.bullet_x, s.bullet_y),
        trail,
        s.shots_right | s.shots_left,
        _row_masks(s.enemy_alive & ~s.enemy_sub, s.enemy_x, s.enemy_y),
        _row_masks(s.enemy_alive & s.enemy_sub, s.enemy_x, s.enemy_y),
        jnp.where(bottom, oxygen, 0),
        jnp.where(bottom, gauge, 0),
        _row_masks(s.diver_alive, s.diver_x, s.diver_y),
    ], axis=-1)
    return ((masks[:, None, :] >> _COLS[None, :, None]) & 1).astype(jnp.bool_)


def _two(entries: list, fields: int, what: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """Two slots from a reference list (oldest first): a single entry goes to slot 1, as after a push."""
    if len(entries) > 2:
        raise ValueError(f"Seaquest keeps at most 2 {what}, got {len(entries)}")
    rows = [[0] * fields] * (2 - len(entries)) + [list(e[:fields]) for e in entries]
    alive = np.asarray([False] * (2 - len(entries)) + [True] * len(entries))
    return alive, [np.asarray([r[i] for r in rows]) for i in range(fields)]


def from_minatar(game_env) -> SeaquestState:
    """The state of a reference ``minatar.environments.seaquest.Env`` (fish before subs in the table)."""
    g = game_env
    enemies = [(e, False) for e in g.e_fish] + [(e, True) for e in g.e_subs]
    if len(enemies) >= ENEMY_SLOTS:
        raise ValueError(f"Seaquest keeps at most {ENEMY_SLOTS - 1} enemies between steps, got "
                         f"{len(enemies)}")
    n = len(enemies)
    column = lambda i, default=0: np.asarray([e[i] for e, _ in enemies] + [default] * (ENEMY_SLOTS - n))
    shot = np.asarray([e[4] if sub else 0 for e, sub in enemies] + [0] * (ENEMY_SLOTS - n))
    b_alive, (b_x, b_y, b_right) = _two(g.f_bullets, 3, "friendly bullets")
    d_alive, (d_x, d_y, d_right, d_timer) = _two(g.divers, 4, "divers")
    shots = {True: np.zeros(SIZE, np.int64), False: np.zeros(SIZE, np.int64)}
    for x, y, right in g.e_bullets:
        shots[bool(right)][y] |= 1 << x
    return SeaquestState(
        sub_x=_int(g.sub_x), sub_y=_int(g.sub_y), sub_right=jnp.asarray(bool(g.sub_or)),
        oxygen=_int(g.oxygen), divers_held=_int(g.diver_count), surfaced=jnp.asarray(bool(g.surface)),
        terminal=jnp.asarray(bool(g.terminal)), spawn_speed=_int(g.e_spawn_speed),
        spawn_timer=_int(g.e_spawn_timer), diver_spawn_timer=_int(g.d_spawn_timer),
        move_speed=_int(g.move_speed), ramp_index=_int(g.ramp_index), shot_timer=_int(g.shot_timer),
        bullet_alive=jnp.asarray(b_alive), bullet_x=_int(b_x), bullet_y=_int(b_y),
        bullet_right=jnp.asarray(b_right.astype(bool)),
        enemy_alive=jnp.asarray(np.arange(ENEMY_SLOTS) < n),
        enemy_sub=jnp.asarray(np.asarray([sub for _, sub in enemies] + [False] * (ENEMY_SLOTS - n))),
        enemy_x=_i8(column(0)), enemy_y=_i8(column(1)), enemy_right=jnp.asarray(column(2).astype(bool)),
        enemy_timer=_i8(column(3)), enemy_shot=_i8(shot),
        enemy_order=jnp.arange(ENEMY_SLOTS, dtype=jnp.uint8), spawned=jnp.asarray(n, jnp.uint8),
        diver_alive=jnp.asarray(d_alive), diver_x=_int(d_x), diver_y=_int(d_y),
        diver_right=jnp.asarray(d_right.astype(bool)), diver_timer=_int(d_timer),
        shots_right=_int(shots[True]), shots_left=_int(shots[False]),
    )


GAME = Game(
    name="seaquest",
    title="Seaquest",
    channels=("sub_front", "sub_back", "friendly_bullet", "trail", "enemy_bullet", "enemy_fish",
              "enemy_sub", "oxygen_guage", "diver_guage", "diver"),
    minimal_actions=(0, 1, 2, 3, 4, 5),
    reset=reset,
    step=step,
    reset_words=0,
    reset_draws=reset_draws,
    step_words=2,
    step_draws=step_draws,
    observe=observe,
    from_minatar=from_minatar,
)
