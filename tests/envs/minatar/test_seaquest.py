"""plastix's Seaquest against the reference minatar 1.0.15: lockstep runs fed the reference's recorded
draws (random and diver-hunting policies), injected reference states in rare branches, the capacity of
the enemy table, and the distributions of ``draw_step``.

Every run, however short, goes through one compiled replay (``CHUNK`` steps, ``ramping`` traced), and
compares the observation, reward and terminal and the whole game state (entity lists in the reference's
order, timers) after every step.
"""

from __future__ import annotations

import copy
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minatar import Environment
from scipy import stats

from plastix.envs.minatar.seaquest import ENEMY_SLOTS, GAME, SeaquestDraws, SeaquestState
from tests.envs.minatar.recording import Call, recorded_env

CHUNK = 512
NO_DRAWS = (False, False, 1, False, 1)  # (enemy right, enemy sub, enemy row, diver right, diver row)
# the reference's scalar attributes, by short names
SCALARS = ("x", "y", "right", "oxygen", "held", "surface", "terminal", "spawn_speed", "spawn_timer",
           "diver_timer", "move_speed", "ramp", "shot_timer")


# --- the replay ---------------------------------------------------------------------------------------


@functools.cache
def _replay():
    """``(start, actions, draws, restarts, ramping) -> (states, obs, rewards, terminals)`` over ``CHUNK``
    steps; ``restarts[t]`` resets the game before step ``t``."""
    fresh = GAME.reset(GAME.draw_reset(None))

    def body(carry, inputs):
        state, ramping = carry
        action, draws, restart = inputs
        state = jax.tree.map(lambda a, b: jnp.where(restart, a, b), fresh, state)
        state, reward, terminal = GAME.step(state, action, draws, ramping)
        return (state, ramping), (state, GAME.observe(state), reward, terminal)

    return jax.jit(lambda start, actions, draws, restarts, ramping: jax.lax.scan(
        body, (start, ramping), (actions, draws, restarts))[1])


@functools.cache
def _observe():
    return jax.jit(GAME.observe)


def _as_draws(draws) -> SeaquestDraws:
    cols = list(zip(*draws, strict=True))
    return SeaquestDraws(
        enemy_right=jnp.asarray(cols[0], jnp.bool_), enemy_sub=jnp.asarray(cols[1], jnp.bool_),
        enemy_row=jnp.asarray(cols[2], jnp.int32), diver_right=jnp.asarray(cols[3], jnp.bool_),
        diver_row=jnp.asarray(cols[4], jnp.int32),
    )


def _play(start: SeaquestState, actions, draws, restarts, ramping: bool):
    """Replays a recorded run from ``start`` in ``CHUNK``-step pieces; numpy outputs, one row a step."""
    n, outs, state = len(actions), [], start
    for lo in range(0, n, CHUNK):
        pad = CHUNK - min(CHUNK, n - lo)
        a = np.concatenate([np.asarray(actions[lo:lo + CHUNK], np.int32), np.zeros(pad, np.int32)])
        d = list(draws[lo:lo + CHUNK]) + [NO_DRAWS] * pad
        r = np.concatenate([np.asarray(restarts[lo:lo + CHUNK], bool), np.zeros(pad, bool)])
        out = _replay()(start if lo == 0 else state, jnp.asarray(a), _as_draws(d), jnp.asarray(r),
                        jnp.asarray(ramping))
        used = CHUNK - pad
        state = jax.tree.map(lambda x, used=used: x[used - 1], out[0])
        outs.append(jax.device_get(jax.tree.map(lambda x, used=used: x[:used], out)))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


# --- canonical states: the reference's lists, from either side ----------------------------------------


def _ref_canon(g) -> dict:
    return {
        "scalars": dict(zip(SCALARS, (
            g.sub_x, g.sub_y, bool(g.sub_or), g.oxygen, g.diver_count, bool(g.surface), bool(g.terminal),
            g.e_spawn_speed, g.e_spawn_timer, g.d_spawn_timer, g.move_speed, g.ramp_index, g.shot_timer,
        ), strict=True)),
        "fish": [(f[0], f[1], bool(f[2]), f[3]) for f in g.e_fish],
        "subs": [(s[0], s[1], bool(s[2]), s[3], s[4]) for s in g.e_subs],
        "divers": [(d[0], d[1], bool(d[2]), d[3]) for d in g.divers],
        "bullets": [(b[0], b[1], bool(b[2])) for b in g.f_bullets],
        "shots": sorted({(b[0], b[1], bool(b[2])) for b in g.e_bullets}),
    }


def _canon(s) -> dict:
    """The reference-shaped view of one (numpy) plastix state: lists oldest first."""
    i = lambda v: int(v)
    age = (np.asarray(s.spawned, np.uint8) - np.asarray(s.enemy_order, np.uint8)).astype(int)
    slots = sorted(np.flatnonzero(s.enemy_alive), key=lambda k: -age[k])
    shots = sorted((x, y, right) for right, masks in ((True, s.shots_right), (False, s.shots_left))
                   for y in range(10) for x in range(10) if int(masks[y]) >> x & 1)
    return {
        "scalars": dict(zip(SCALARS, (
            i(s.sub_x), i(s.sub_y), bool(s.sub_right), i(s.oxygen), i(s.divers_held), bool(s.surfaced),
            bool(s.terminal), i(s.spawn_speed), i(s.spawn_timer), i(s.diver_spawn_timer), i(s.move_speed),
            i(s.ramp_index), i(s.shot_timer),
        ), strict=True)),
        "fish": [(i(s.enemy_x[k]), i(s.enemy_y[k]), bool(s.enemy_right[k]), i(s.enemy_timer[k]))
                 for k in slots if not s.enemy_sub[k]],
        "subs": [(i(s.enemy_x[k]), i(s.enemy_y[k]), bool(s.enemy_right[k]), i(s.enemy_timer[k]),
                  i(s.enemy_shot[k])) for k in slots if s.enemy_sub[k]],
        "divers": [(i(s.diver_x[k]), i(s.diver_y[k]), bool(s.diver_right[k]), i(s.diver_timer[k]))
                   for k in (0, 1) if s.diver_alive[k]],
        "bullets": [(i(s.bullet_x[k]), i(s.bullet_y[k]), bool(s.bullet_right[k])) for k in (0, 1)
                    if s.bullet_alive[k]],
        "shots": shots,
    }


def _at(states, t: int):
    return jax.tree.map(lambda x: x[t], states)


# --- the reference side -------------------------------------------------------------------------------


def _draws(calls: list[Call], enemy_due: bool, diver_due: bool) -> tuple:
    """The game's draws of one ``act()`` from its calls: an enemy spawn's 3, then a diver spawn's 2."""
    draws, calls = list(NO_DRAWS), list(calls)
    if enemy_due:
        side, sub, row = calls[:3]
        assert (side.method, sub.method, row.method) == ("rand", "rand", "randint")
        assert row.kwargs == {"low": 1, "high": 9}
        draws[:3] = bool(side.value < 1 / 2), bool(sub.value < 1 / 3), int(row.value)
        calls = calls[3:]
    if diver_due:
        side, row = calls[:2]
        assert (side.method, row.method) == ("rand", "randint") and row.kwargs == {"low": 1, "high": 9}
        draws[3:] = bool(side.value < 1 / 2), int(row.value)
        calls = calls[2:]
    assert calls == [], "calls left over: the spawn timers disagree"
    return tuple(draws)


class _Still:
    """A random stream for look-ahead copies: no spawn draw matters to the next step's collisions."""

    def rand(self):
        return 0.99

    def randint(self, low, high=None):
        return low


def _safe(g, action: int) -> bool:
    """Whether ``action`` survives one step (on a copy of the game, with made-up draws)."""
    stream, g.random = g.random, _Still()
    try:
        trial = copy.deepcopy(g)
    finally:
        g.random = stream
    trial.act(action)
    return not trial.terminal


def _hunter(g, rng: np.random.Generator, eps: float = 0.15) -> int:
    """A biased policy that reaches deep states: collects divers, surfaces with them (over and over once
    the count has gone negative), shoots what is ahead, and avoids actions that end the episode at once."""
    if rng.random() < eps:
        return int(rng.integers(6))
    x, y, held = g.sub_x, g.sub_y, g.diver_count
    prefs = []
    if held < 0:
        prefs.append(4 if y == 0 else 2)
    elif held == 6 or (held > 0 and g.oxygen < 25 + 12 * y):
        prefs.append(2)
    elif y == 0:
        prefs.append(4)
    ahead = [e for e in g.e_fish + g.e_subs if e[1] == y and (e[0] > x if g.sub_or else e[0] < x)]
    if g.shot_timer == 0 and ahead:
        prefs.append(5)
    if g.divers:
        d = min(g.divers, key=lambda d: abs(d[1] - y) + abs(d[0] - x))
        prefs += [2] if d[1] < y else [4] if d[1] > y else []
        prefs += [1] if d[0] < x else [3] if d[0] > x else []
    prefs += [int(a) for a in rng.permutation(6)]
    return next((a for a in prefs if _safe(g, a)), prefs[0])


def _record(env, rec, n_steps: int, sticky: float, policy, rng, last: int = 0) -> dict:
    """Steps the reference ``n_steps`` times (auto-reset on terminal), keeping what the replay needs, what
    it must reproduce, and the number of enemies before each step."""
    out = {k: [] for k in ("action", "draws", "restart", "obs", "reward", "terminal", "canon", "enemies")}
    restart = False
    for _ in range(n_steps):
        g = env.env
        if restart:
            env.reset()
            assert rec.take() == []
        due = (not g.terminal and g.e_spawn_timer == 0, not g.terminal and g.d_spawn_timer == 0)
        enemies = len(g.e_fish) + len(g.e_subs)
        chosen = policy(g, rng)
        reward, terminal = env.act(chosen)
        calls = rec.take()
        assert calls[0].method == "rand" and calls[0].args == ()  # the sticky-action draw
        last = last if calls[0].value < sticky else chosen
        assert env.last_action == last
        step = (last, _draws(calls[1:], *due), restart, env.state(), reward, terminal, _ref_canon(g), enemies)
        for k, v in zip(out, step, strict=True):
            out[k].append(v)
        restart = terminal
    return out


def _compare(start: SeaquestState, ref: dict, ramping: bool, label: str):
    """Replays ``ref`` from ``start`` and checks every step; returns the plastix states."""
    states, obs, reward, terminal = _play(start, ref["action"], ref["draws"], ref["restart"], ramping)
    bad = np.flatnonzero((obs != np.asarray(ref["obs"])).any(axis=(1, 2, 3))
                         | (reward != np.asarray(ref["reward"])) | (terminal != np.asarray(ref["terminal"])))
    assert bad.size == 0, f"{label}: first observation/reward/terminal mismatch at step {bad[0]}"
    for t, want in enumerate(ref["canon"]):
        assert _canon(_at(states, t)) == want, f"{label}: state mismatch at step {t}"
    return states


def _random_policy(g, rng):
    return int(rng.integers(6))


def _deep_start(g) -> None:
    """A game just after a 6-diver surfacing: the diver count is -1, so every surfacing ramps."""
    g.diver_count, g.sub_y, g.surface = -1, 0, True


def _check_lockstep(seed: int, n_steps: int, sticky: float, ramping: bool, policy: str,
                    deep: bool = False) -> dict:
    policy = _random_policy if policy == "random" else _hunter
    env, rec = recorded_env("seaquest", seed, sticky, ramping)
    env.reset()
    assert rec.take() == []
    if deep:
        _deep_start(env.env)
    start = GAME.from_minatar(env.env)
    ref = _record(env, rec, n_steps, sticky, policy, np.random.default_rng(seed))
    _compare(start, ref, ramping, f"seed {seed}")
    return ref


def test_reset_matches_reference():
    env = Environment("seaquest")
    env.reset()
    state = GAME.reset(GAME.draw_reset(jax.random.key(0)))
    np.testing.assert_array_equal(np.asarray(_observe()(state)), env.state())
    assert _canon(jax.device_get(state)) == _ref_canon(env.env)
    assert _canon(jax.device_get(GAME.from_minatar(env.env))) == _ref_canon(env.env)


@pytest.mark.parametrize(
    "seed,sticky,ramping,policy,deep",
    [(0, 0.1, True, "random", False), (1, 0.0, False, "random", False), (2, 0.1, True, "hunter", False),
     (3, 0.0, False, "hunter", False), (4, 0.1, True, "hunter", True)],
)
def test_lockstep(seed, sticky, ramping, policy, deep):
    ref = _check_lockstep(seed, 800, sticky, ramping, policy, deep)
    assert sum(ref["terminal"]) >= (5 if policy == "random" else 1)
    ramps = max(c["scalars"]["ramp"] for c in ref["canon"])
    if not ramping:
        assert ramps == 0
    if policy == "hunter":
        assert sum(ref["reward"]) >= 5  # kills, or a 6-diver bonus
        assert ramps >= (19 if deep else 1 if ramping else 0)
    if deep:
        assert max(ref["enemies"]) >= 12  # a crowded screen at the fastest spawn rate


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 15))
@pytest.mark.parametrize(
    "sticky,ramping,policy,deep",
    [(0.1, True, "random", False), (0.0, False, "random", False), (0.1, True, "hunter", False),
     (0.1, True, "hunter", True)],
)
def test_lockstep_long(seed, sticky, ramping, policy, deep):
    ref = _check_lockstep(seed, 10_000, sticky, ramping, policy, deep)
    assert max(ref["enemies"]) < ENEMY_SLOTS


# --- perturb and inject -------------------------------------------------------------------------------


class ScriptedRandom:
    """A stand-in for the reference's ``RandomState`` returning chosen values: ``rand`` pops ``uniforms``
    (then 0.99: a fish or diver entering on the right), ``randint`` pops ``rows`` (then 8); calls logged."""

    def __init__(self, uniforms=(), rows=()):
        self.uniforms, self.rows, self.calls = list(uniforms), list(rows), []

    def rand(self):
        value = self.uniforms.pop(0) if self.uniforms else 0.99
        self.calls.append(Call("rand", (), {}, value))
        return value

    def randint(self, low, high):
        value = self.rows.pop(0) if self.rows else high - 1
        assert low <= value < high
        self.calls.append(Call("randint", (), {"low": low, "high": high}, value))
        return value

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls


def _inject(setup, actions, ramping: bool = True, uniforms=(), rows=()) -> tuple[list, list]:
    """Sets up a reference game, imports it, steps both through ``actions`` with the same draws and
    checks they agree at every step; returns the reference's (reward, terminal) and canonical states."""
    env = Environment("seaquest", sticky_action_prob=0.0, difficulty_ramping=ramping)
    g = env.env
    g.reset()
    setup(g)
    g.random = rand = ScriptedRandom(uniforms, rows)
    start = GAME.from_minatar(g)
    np.testing.assert_array_equal(np.asarray(_observe()(start)), g.state())
    assert _canon(jax.device_get(start)) == _ref_canon(g)
    ref = {k: [] for k in ("action", "draws", "restart", "obs", "reward", "terminal", "canon")}
    for a in actions:
        due = (not g.terminal and g.e_spawn_timer == 0, not g.terminal and g.d_spawn_timer == 0)
        reward, terminal = g.act(a)
        step = (a, _draws(rand.take(), *due), False, g.state(), reward, terminal, _ref_canon(g))
        for k, v in zip(ref, step, strict=True):
            ref[k].append(v)
    _compare(start, ref, ramping, setup.__name__)
    return list(zip(ref["reward"], ref["terminal"], strict=True)), ref["canon"]


def _quiet(g, x=5, y=4) -> None:
    """No spawn for a while, the player at (x, y) facing left (right at column 9, where the reference
    cannot show it facing left)."""
    g.sub_x, g.sub_y, g.sub_or, g.surface = x, y, x == 9, False
    g.e_spawn_timer, g.d_spawn_timer = 15, 25


def test_surfacing_with_no_diver_ends_without_refilling_oxygen():
    def setup(g):
        _quiet(g, y=1)
        g.oxygen, g.diver_count = 57, 0

    results, canon = _inject(setup, [2])
    assert results == [(0, True)]
    assert canon[0]["scalars"]["oxygen"] == 57  # not refilled: the gauge shows 2 cells


@pytest.mark.parametrize("held", [1, 3, 5])
def test_surfacing_with_some_divers(held):
    def setup(g):
        _quiet(g, y=1)
        g.oxygen, g.diver_count = 33, held

    results, canon = _inject(setup, [2, 0, 4, 2])  # surface, wait there (no new surfacing), dive, surface
    assert results == [(0, False)] * 3 + [(0, held == 1)]  # the second surfacing with none left ends it
    assert [c["scalars"]["held"] for c in canon] == [held - 1] * 3 + [max(held - 2, 0)]
    assert canon[0]["scalars"]["oxygen"] == 200 and canon[1]["scalars"]["oxygen"] == 200


def test_six_divers_reward_oxygen_on_top_of_kills_then_count_goes_negative():
    def setup(g):
        _quiet(g, x=5, y=1)
        g.oxygen, g.diver_count = 137, 6
        g.f_bullets = [[3, 1, False]]  # flies onto the fish at column 2 this step
        g.e_fish = [[2, 1, True, 3]]
        g.shot_timer = 2

    results, canon = _inject(setup, [2, 4, 2, 4, 2])
    assert results[0] == (1 + 137 * 10 // 200, False)
    # later surfacings neither end the episode nor reward, and still ramp
    assert [c["scalars"]["held"] for c in canon] == [-1, -1, -2, -2, -3]
    assert all(r == (0, False) for r in results[1:])
    assert [c["scalars"]["oxygen"] for c in canon] == [200, 199, 200, 199, 200]
    assert [c["scalars"]["ramp"] for c in canon] == [1, 1, 2, 2, 3]


def test_negative_count_shows_empty_gauge_and_still_picks_up_divers():
    def setup(g):
        _quiet(g, x=4, y=3)
        g.diver_count = -2
        g.divers = [[5, 3, False, 0]]  # moves onto the player

    _, canon = _inject(setup, [0])
    assert canon[0]["scalars"]["held"] == -1 and canon[0]["divers"] == []


def test_oxygen_runs_out_on_the_step_after_it_reaches_zero():
    def setup(g):
        _quiet(g)
        g.oxygen = 2

    results, canon = _inject(setup, [0, 0, 0])
    assert results == [(0, False), (0, False), (0, True)]
    assert [c["scalars"]["oxygen"] for c in canon] == [1, 0, -1]


def test_oxygen_out_while_surfacing_with_divers_ends_but_refills():
    def setup(g):
        _quiet(g, y=1)
        g.oxygen, g.diver_count = 0, 2

    results, canon = _inject(setup, [2])
    assert results == [(0, True)] and canon[0]["scalars"]["oxygen"] == 200


RAMPS = [(20 - i, m) for i, m in enumerate([5, 5, 4, 4, 3, 3] + [2] * 14)]  # (spawn, move) after i ramps


@pytest.mark.parametrize("index", [0, 1, 2, 3, 5, 6, 18, 19])
@pytest.mark.parametrize("ramping", [True, False])
def test_ramp_on_surfacing(index, ramping):
    def setup(g):
        _quiet(g, y=1)
        g.diver_count, g.ramp_index = 2, index
        g.e_spawn_speed, g.move_speed = RAMPS[index]

    _, canon = _inject(setup, [2], ramping=ramping)
    after = RAMPS[min(index + 1, 19)] if ramping else RAMPS[index]
    got = canon[0]["scalars"]
    ramp = min(index + 1, 19) if ramping else index
    assert (got["spawn_speed"], got["move_speed"], got["ramp"]) == (*after, ramp)


def test_ramps_stop_at_the_fastest_settings():
    def setup(g):
        _quiet(g, y=1)
        g.diver_count, g.ramp_index, g.e_spawn_speed, g.move_speed = 3, 25, 1, 2

    _, canon = _inject(setup, [2])
    got = canon[0]["scalars"]
    assert (got["spawn_speed"], got["move_speed"], got["ramp"]) == (1, 2, 25)


def test_sub_fires_on_its_timer():
    def setup(g):
        _quiet(g, x=9, y=8)
        g.e_subs = [[4, 3, True, 3, 0], [6, 5, False, 0, 1]]

    _, canon = _inject(setup, [0, 0])
    assert canon[0]["shots"] == [(5, 3, True)] and canon[1]["shots"] == [(4, 5, False), (6, 3, True)]


def test_sub_leaving_the_screen_still_fires_but_the_shot_vanishes():
    def setup(g):
        _quiet(g, x=5, y=8)
        g.e_subs = [[9, 2, True, 0, 0], [0, 3, False, 0, 0]]

    _, canon = _inject(setup, [0])
    assert canon[0]["subs"] == [] and canon[0]["shots"] == []


def test_sub_killed_moving_onto_a_bullet_still_fires():
    def setup(g):
        _quiet(g, x=9, y=4)
        g.f_bullets = [[6, 4, False]]  # flies to column 5
        g.e_subs = [[4, 4, True, 0, 0]]  # moves to column 5 onto the bullet, fires from there

    results, canon = _inject(setup, [0])
    assert results == [(1, False)]
    assert canon[0]["subs"] == [] and canon[0]["bullets"] == [] and canon[0]["shots"] == [(6, 4, True)]


def test_sub_shot_by_a_bullet_does_not_fire():
    def setup(g):
        _quiet(g, x=8, y=4)
        g.f_bullets = [[6, 4, False]]  # flies onto the sub at column 5
        g.e_subs = [[5, 4, True, 2, 0]]

    results, canon = _inject(setup, [0])
    assert results == [(1, False)] and canon[0]["shots"] == []


def test_bullet_kills_fish_before_sub_and_the_oldest_first():
    def setup(g):
        _quiet(g, x=9, y=6)
        g.f_bullets = [[6, 3, False]]
        g.e_subs = [[5, 3, False, 3, 4]]
        g.e_fish = [[5, 3, False, 2], [5, 3, False, 4], [5, 3, False, 1]]

    _, canon = _inject(setup, [0])
    assert canon[0]["fish"] == [(5, 3, False, 3), (5, 3, False, 0)]
    assert len(canon[0]["subs"]) == 1


def test_two_bullets_newest_first_on_stacked_subs():
    def setup(g):
        _quiet(g, x=0, y=8)
        g.f_bullets = [[3, 2, True], [5, 2, False]]  # both fly to column 4
        g.e_subs = [[4, 2, True, 3, 7], [4, 2, True, 2, 5], [4, 2, True, 4, 9]]

    results, canon = _inject(setup, [0])
    assert results == [(2, False)] and canon[0]["subs"] == [(4, 2, True, 3, 8)]


def test_enemies_moving_onto_bullets_pair_newest_enemy_with_oldest_bullet():
    def setup(g):
        _quiet(g, x=9, y=8)
        # the bullets cross onto column 4, row 6, where three fish land; only two bullets there
        g.f_bullets = [[5, 6, False], [3, 6, True]]
        g.e_fish = [[3, 6, True, 0], [3, 6, True, 0], [3, 6, True, 0]]

    results, canon = _inject(setup, [0])
    assert results == [(2, False)] and canon[0]["fish"] == [(4, 6, True, 5)] and canon[0]["bullets"] == []


def test_newest_of_two_bullets_on_a_cell_kills_the_one_fish_there():
    def setup(g):
        _quiet(g, x=0, y=8)
        g.f_bullets = [[4, 6, True], [6, 6, False]]  # both fly to column 5
        g.e_fish = [[5, 6, False, 3]]

    results, canon = _inject(setup, [0])
    assert results == [(1, False)] and canon[0]["bullets"] == [(5, 6, True)]


def test_newest_of_two_subs_landing_on_a_bullet_dies():
    def setup(g):
        _quiet(g, x=0, y=8)
        g.f_bullets = [[6, 3, False]]  # flies to column 5
        g.e_subs = [[4, 3, True, 0, 7], [4, 3, True, 0, 2]]  # both move to column 5

    results, canon = _inject(setup, [0])
    assert results == [(1, False)] and canon[0]["subs"] == [(5, 3, True, 5, 6)]


def test_enemy_landing_on_two_bullets_takes_the_oldest():
    def setup(g):
        _quiet(g, x=0, y=8)
        g.f_bullets = [[6, 3, False], [4, 3, True]]  # both fly to column 5
        g.e_fish = [[4, 3, True, 0]]  # and it moves there after them

    results, canon = _inject(setup, [0])
    assert results == [(1, False)] and canon[0]["bullets"] == [(5, 3, True)]


def test_enemy_moving_onto_the_player_spares_a_bullet_there():
    def setup(g):
        _quiet(g, x=5, y=5)
        g.f_bullets = [[4, 4, True]]  # flies to (5, 4), where the player moves up to
        g.e_fish = [[6, 4, False, 0]]  # moves onto the player: the episode ends, no kill

    results, canon = _inject(setup, [2])
    assert results == [(0, True)]
    assert canon[0]["bullets"] == [(5, 4, True)] and canon[0]["fish"] == [(5, 4, False, 5)]


def test_sub_and_fish_landing_on_the_same_bullet():
    def setup(g):
        _quiet(g, x=9, y=8)
        g.f_bullets = [[1, 2, True]]  # flies to column 2
        g.e_subs = [[1, 2, True, 0, 4]]
        g.e_fish = [[1, 2, True, 0]]

    results, canon = _inject(setup, [0])
    assert results == [(1, False)] and canon[0]["subs"] == [] and len(canon[0]["fish"]) == 1


@pytest.mark.parametrize("held", [0, 4, 5, 6])
def test_diver_pickups(held):
    def setup(g):
        _quiet(g, x=5, y=3)
        g.diver_count = held
        g.divers = [[4, 3, True, 0], [5, 3, False, 2]]  # the older moves onto the player, the newer is there

    _, canon = _inject(setup, [0])
    assert canon[0]["scalars"]["held"] == min(held + 2, 6)
    assert len(canon[0]["divers"]) == (0 if held < 5 else 1 if held == 5 else 2)


def test_diver_leaves_the_screen():
    def setup(g):
        _quiet(g, x=5, y=3)
        g.divers = [[0, 7, False, 0], [9, 2, True, 3]]

    _, canon = _inject(setup, [0])
    assert canon[0]["divers"] == [(9, 2, True, 2)]


@pytest.mark.parametrize(
    "name,enemy,action",
    [("fish moves onto player", ("fish", [4, 4, True, 0]), 0),
     ("player moves onto fish", ("fish", [4, 4, True, 3]), 1),
     ("sub moves onto player", ("sub", [6, 4, False, 0, 5]), 0),
     ("fish passes by", ("fish", [4, 5, True, 0]), 0),
     ("fish swapped past", ("fish", [4, 4, True, 0]), 1)],
)
def test_collisions(name, enemy, action):
    def setup(g):
        _quiet(g, x=5, y=4)
        kind, e = enemy
        (g.e_fish if kind == "fish" else g.e_subs).append(list(e))

    results, _ = _inject(setup, [action])
    assert results[0][1] == (name not in ("fish passes by",))


@pytest.mark.parametrize("where", [(5, 4, True), (6, 4, False), (4, 4, True), (7, 4, False), (5, 3, True)])
def test_enemy_bullet_hits_before_or_after_moving(where):
    def setup(g):
        _quiet(g, x=5, y=4)
        g.e_bullets = [list(where)]

    results, _ = _inject(setup, [0])
    assert results[0][1] == (where[:2] in ((5, 4), (4, 4), (6, 4)))


@pytest.mark.parametrize("uniforms,row", [((0.2, 0.1), 3), ((0.7, 0.9), 3), ((0.2, 0.9), 6), ((0.7, 0.1), 6)])
def test_spawn_suppressed_on_a_row_going_the_other_way(uniforms, row):
    def setup(g):
        _quiet(g, x=5, y=8)
        g.e_spawn_timer, g.d_spawn_timer = 0, 0
        g.e_fish = [[6, 3, True, 4]]

    _, canon = _inject(setup, [0], uniforms=uniforms + (0.3,), rows=(row, 2))
    blocked = row == 3 and uniforms[0] >= 0.5
    assert len(canon[0]["fish"]) + len(canon[0]["subs"]) == (1 if blocked else 2)
    assert canon[0]["divers"] == [(0, 2, True, 4)]


def test_spawn_onto_the_player():
    def setup(g):
        _quiet(g, x=0, y=5)
        g.e_spawn_timer = 0

    results, _ = _inject(setup, [0], uniforms=(0.1, 0.9), rows=(5,))
    assert results == [(0, True)]


def test_terminal_absorbs():
    def setup(g):
        _quiet(g)
        g.terminal = True
        g.e_spawn_timer = 0
        g.e_fish = [[3, 4, True, 0]]

    results, canon = _inject(setup, [3, 5])
    assert results == [(0, True), (0, True)] and canon[0] == canon[1]


# states with entities anywhere; each within the capacities (at most 2 bullets and divers, one of each
# when a new one may come, and never the player at column 9 facing left, where the reference crashes)
fish = st.tuples(st.integers(0, 9), st.integers(1, 8), st.booleans(), st.integers(0, 5))
sub = st.tuples(st.integers(0, 9), st.integers(1, 8), st.booleans(), st.integers(0, 5), st.integers(0, 10))
diver = st.tuples(st.integers(0, 9), st.integers(1, 8), st.booleans(), st.integers(0, 5))
bullet = st.tuples(st.integers(0, 9), st.integers(0, 8), st.booleans())


@settings(max_examples=150, deadline=None)
@given(
    player=st.tuples(st.integers(0, 9), st.integers(0, 8), st.booleans(), st.booleans()),
    fishes=st.lists(fish, max_size=8), subs=st.lists(sub, max_size=8), divers=st.lists(diver, max_size=2),
    bullets=st.lists(bullet, max_size=2), shots=st.lists(bullet, max_size=6),
    counters=st.tuples(st.integers(-3, 6), st.integers(0, 200), st.integers(0, 5), st.integers(0, 3),
                       st.integers(0, 3)),
    speeds=st.sampled_from(list(enumerate(RAMPS))),
    actions=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    ramping=st.booleans(), uniforms=st.lists(st.floats(0, 1, exclude_max=True), min_size=8, max_size=8),
    rows=st.lists(st.integers(1, 8), min_size=4, max_size=4),
)
def test_random_injected_states(player, fishes, subs, divers, bullets, shots, counters, speeds, actions,
                                ramping, uniforms, rows):
    """Any such state steps as the reference does, whatever it draws."""
    x, y, right, surface = player
    if x == 9 and not right:
        right = True
    if len(bullets) == 2:
        actions = [a if a != 5 else 0 for a in actions[:1]]
    if len(divers) == 2:
        counters = counters[:4] + (5,)  # no third diver within the 4 steps

    def setup(g):
        g.sub_x, g.sub_y, g.sub_or, g.surface = x, y, right, surface and y == 0
        g.e_fish, g.e_subs = [list(f) for f in fishes], [list(s) for s in subs]
        g.divers, g.f_bullets = [list(d) for d in divers], [list(b) for b in bullets]
        g.e_bullets = [[b[0], max(b[1], 1), b[2]] for b in shots]
        g.diver_count, g.oxygen, g.shot_timer, g.e_spawn_timer, g.d_spawn_timer = counters
        g.ramp_index, (g.e_spawn_speed, g.move_speed) = speeds

    _inject(setup, actions, ramping=ramping, uniforms=uniforms, rows=rows)


# --- the enemy table's capacity -----------------------------------------------------------------------


def test_enemy_capacity_at_the_fastest_spawns():
    """The most crowded screen the rules allow at the top spawn rate: every spawn lands (one row, one
    direction, fish and subs in turn), ramps come as fast as surfacing allows (one per 2 steps, the count
    being below 0), nothing is shot and no diver comes. The table fills to its steady 29 enemies between
    steps (30 at a spawn), within ``ENEMY_SLOTS``, and stays exact."""

    def setup(g):
        _deep_start(g)
        g.e_spawn_timer, g.d_spawn_timer = 0, 10**6

    n = 300
    _, canon = _inject(setup, [4, 2] * (n // 2), uniforms=[0.1, 0.9, 0.1, 0.1] * n, rows=[7] * n)
    counts = [len(c["fish"]) + len(c["subs"]) for c in canon]
    assert max(counts) == 29 and counts[-1] == 29 and max(counts) < ENEMY_SLOTS
    assert (canon[-1]["scalars"]["spawn_speed"], canon[-1]["scalars"]["move_speed"]) == (1, 2)
    assert canon[-1]["shots"] and all(not c["scalars"]["terminal"] for c in canon)


# --- properties with plastix's own draws --------------------------------------------------------------


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ramping=st.booleans())
def test_rollout_properties(seed, ramping):
    """From a reset with ``draw_step``'s draws (which do not read the state): one sub front and back, a
    reward >= 0, entities only on rows 1..8 and the gauges on row 9, and a terminal state never changes."""
    rng = np.random.default_rng(seed)
    keys = jax.random.split(jax.random.key(seed), CHUNK)
    draws = jax.vmap(GAME.draw_step, in_axes=(0, None))(keys, GAME.reset(None))
    actions = rng.choice(6, CHUNK, p=[0.1, 0.15, 0.15, 0.15, 0.3, 0.15])
    out = _replay()(GAME.reset(None), jnp.asarray(actions, jnp.int32), draws, jnp.zeros(CHUNK, bool),
                    jnp.asarray(ramping))
    states, obs, reward, terminal = jax.device_get(out)
    assert (obs[..., 0].sum(axis=(1, 2)) == 1).all() and (obs[..., 1].sum(axis=(1, 2)) == 1).all()
    assert (reward >= 0).all()
    assert not obs[:, 9, :, :7].any() and not obs[:, :9, :, 7:9].any() and not obs[:, [0, 9], :, 4:7].any()
    ended = np.flatnonzero(terminal)
    if ended.size:
        first = ended[0]
        assert terminal[first:].all() and (reward[first + 1:] == 0).all()
        for k, v in vars(states).items():
            assert (np.asarray(v)[first:] == np.asarray(v)[first]).all(), k
    assert (np.asarray(states.bullet_alive).sum(-1) <= 2).all()


# --- draw distributions -------------------------------------------------------------------------------

N_DRAWS = 40_000


@functools.cache
def _plastix_draws(n: int, seed: int) -> np.ndarray:
    keys = jax.random.split(jax.random.key(seed), n)
    d = jax.jit(jax.vmap(GAME.draw_step, in_axes=(0, None)))(keys, GAME.reset(None))
    return np.stack([np.asarray(v).astype(np.int64) for v in (d.enemy_right, d.enemy_sub, d.enemy_row,
                                                                d.diver_right, d.diver_row)], axis=1)


def _reference_draws(n: int, seed: int) -> np.ndarray:
    """``(right, sub, row)`` of ``n`` reference enemy spawns and ``(right, row)`` of ``n`` diver spawns."""
    env = Environment("seaquest")
    g = env.env
    g.random = np.random.RandomState(seed)
    out = np.empty((n, 5), np.int64)
    for i in range(n):
        g.e_fish, g.e_subs, g.divers = [], [], []
        g._spawn_enemy()
        g._spawn_diver()
        (e, sub), d = ((g.e_subs[0], 1) if g.e_subs else (g.e_fish[0], 0)), g.divers[0]
        out[i] = e[2], sub, e[1], d[2], d[1]
    return out


def test_draw_step_marginals():
    ours = _plastix_draws(N_DRAWS, 0)
    for column, probs in ((0, [1 / 2, 1 / 2]), (1, [2 / 3, 1 / 3]), (3, [1 / 2, 1 / 2])):
        counts = np.bincount(ours[:, column], minlength=2)
        assert stats.chisquare(counts, np.asarray(probs) * N_DRAWS).pvalue > 1e-3
    for column in (2, 4):
        counts = np.bincount(ours[:, column], minlength=9)
        assert counts[0] == 0 and stats.chisquare(counts[1:]).pvalue > 1e-3


def test_draw_step_against_reference():
    """The joint (side, sub, row) and (side, row) frequencies of plastix and the reference, and the
    independence of the five draws in plastix's (they share one ``bits`` call)."""
    ours, theirs = _plastix_draws(N_DRAWS, 1), _reference_draws(N_DRAWS // 2, 1)
    for code in (lambda s: s[:, 0] * 16 + s[:, 1] * 8 + s[:, 2] - 1, lambda s: s[:, 3] * 8 + s[:, 4] - 1):
        table = np.stack([np.bincount(code(ours), minlength=32), np.bincount(code(theirs), minlength=32)])
        table = table[:, table.sum(0) > 0]
        assert table.min() > 50 and stats.chi2_contingency(table).pvalue > 1e-3
    enemy, diver = ours[:, 0] * 16 + ours[:, 1] * 8 + ours[:, 2] - 1, ours[:, 3] * 8 + ours[:, 4] - 1
    table = np.zeros((32, 16), np.int64)
    np.add.at(table, (enemy, diver), 1)
    assert stats.chi2_contingency(table).pvalue > 1e-3
