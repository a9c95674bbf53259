"""plastix's SpaceInvaders against the reference ``minatar`` 1.0.15 game (the test oracle).

SpaceInvaders draws nothing at random, so the reference's only draw per ``act()`` is the env's sticky one:
the lockstep tests apply it themselves and compare the whole game state, the observation, the reward and
the terminal flag at every step. Rare branches are reached by writing reference game objects' attributes
and stepping both games from the same state.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minatar.environments.space_invaders import Env

from plastix.envs.minatar.game import to_grid, to_rows
from plastix.envs.minatar.space_invaders import GAME, SpaceInvadersState
from tests.envs.minatar.recording import recorded_env

FIELDS = tuple(SpaceInvadersState.__dataclass_fields__)
REFERENCE_NAMES = {"alien": "alien_map", "f_bullet": "f_bullet_map", "e_bullet": "e_bullet_map"}
N, L, U, R, D, F = range(6)


# --- jitted cores, each compiled once per test session (``ramping`` is traced, shapes are fixed) ------

CHUNK = 512  # rollouts run in scans of this many steps
BATCH = 400  # batched single steps


def _step_and_observe(state, action, ramping):
    new, reward, terminal = GAME.step(state, action, (), ramping)
    return new, reward, terminal, GAME.observe(new)


@functools.cache
def step_fn():
    return jax.jit(_step_and_observe)


@functools.cache
def batch_step_fn():
    return jax.jit(jax.vmap(_step_and_observe))


@functools.cache
def rollout_fn():
    """One ``CHUNK``-step scan over executed actions, each after removing the aliens outside a row-mask
    ``keep``: every post-step state, observation, reward and terminal; with ``auto_reset`` a terminal step
    is followed by ``reset``, as the tests do to the reference."""

    def chunk(state, actions, keeps, ramping, auto_reset):
        def body(state, xs):
            action, keep = xs
            new, reward, terminal, obs = _step_and_observe(
                state.replace(alien=state.alien & keep), action, ramping
            )
            fresh = GAME.reset(GAME.draw_reset(jax.random.key(0)))
            carry = jax.tree.map(lambda a, b: jnp.where(terminal & auto_reset, a, b), fresh, new)
            return carry, (new, obs, reward, terminal)

        return jax.lax.scan(body, state, (actions, keeps))

    return jax.jit(chunk)


def rollout(actions, keeps, ramping: bool, auto_reset: bool):
    """plastix from a reset over ``actions`` (and ``bool[T, 10, 10]`` keep masks), in ``CHUNK``-step scans."""
    steps = len(actions)
    padded = -(-steps // CHUNK) * CHUNK
    actions = np.pad(np.asarray(actions, np.int32), (0, padded - steps))
    rows = np.asarray(to_rows(np.asarray(keeps)))
    rows = np.pad(rows, ((0, padded - steps), (0, 0)), constant_values=(1 << 10) - 1)
    state, outs = GAME.reset(()), []
    for start in range(0, padded, CHUNK):
        part = slice(start, start + CHUNK)
        state, out = rollout_fn()(state, actions[part], rows[part], ramping, auto_reset)
        outs.append(out)
    return jax.tree.map(lambda *xs: np.concatenate(xs)[:steps], *outs)


# --- the reference side -----------------------------------------------------------------------------


def snapshot(game: Env) -> dict[str, np.ndarray]:
    """The reference game's state, named as plastix's state fields."""
    out = {}
    for name in FIELDS:
        value = getattr(game, REFERENCE_NAMES.get(name, name))
        out[name] = np.asarray(value != 0) if name in REFERENCE_NAMES else np.asarray(value)
    return out


def grid(*cells: tuple[int, int]) -> np.ndarray:
    """A reference map (float, as the reference keeps them) with ones at ``cells``."""
    m = np.zeros((10, 10))
    for row, col in cells:
        m[row, col] = 1
    return m


def game_with(ramping: bool = True, **attrs) -> Env:
    """A reference game after reset, with ``attrs`` written over its attributes."""
    game = Env(ramping=ramping)
    for name, value in attrs.items():
        setattr(game, name, value)
    return game


def as_reference(mine) -> dict[str, np.ndarray]:
    """plastix's state (or stacked states) in the reference's terms: maps as ``bool[..., 10, 10]``."""
    out = {name: np.asarray(getattr(mine, name)) for name in FIELDS}
    return out | {name: np.asarray(to_grid(out[name])) for name in REFERENCE_NAMES}


def assert_states_equal(mine, reference: dict[str, np.ndarray], where: str = "") -> None:
    mine = as_reference(mine)
    for name in FIELDS:
        np.testing.assert_array_equal(mine[name], reference[name], err_msg=f"{name} {where}")


def check_step(game: Env, action: int) -> tuple[float, bool]:
    """Step the reference game and plastix's copy of its state with ``action``; compare everything."""
    before = GAME.from_minatar(game)
    reward, terminal = game.act(action)
    state, r, t, obs = step_fn()(before, action, game.ramping)
    assert_states_equal(state, snapshot(game))
    np.testing.assert_array_equal(np.asarray(obs), game.state())
    assert float(r) == reward and bool(t) == terminal
    return float(reward), bool(terminal)


def random_policy(game: Env, rng: np.random.RandomState) -> int:
    return int(rng.randint(6))


def hunter_policy(game: Env, rng: np.random.RandomState) -> int:
    """Half random; otherwise dodge what lands on row 9 next and walk under the lowest alien, firing."""
    if rng.rand() < 0.5:
        return int(rng.randint(6))
    soon = (game.e_bullet_map[8] > 0) | (game.alien_map[9] > 0)
    later = soon | (game.e_bullet_map[7] > 0)
    columns = np.flatnonzero(game.alien_map.any(axis=0))
    lowest = 9 - np.argmax(game.alien_map[::-1, columns] > 0, axis=0)
    target = columns[np.lexsort((np.abs(columns - game.pos), -lowest))[0]]
    moves = {N: game.pos, L: max(game.pos - 1, 0), R: min(game.pos + 1, 9)}
    pool = {a: c for a, c in moves.items() if not later[c]} or {a: c for a, c in moves.items() if not soon[c]}
    pool = pool or moves
    if target == game.pos and N in pool and game.shot_timer == 0:
        return F
    return min(pool, key=lambda a: (abs(pool[a] - target), a != N))


def reference_run(
    seed: int, steps: int, sticky: float, ramping: bool, policy, clear_prob: float = 0.0
) -> dict:
    """The reference env (auto-reset on terminal) under ``policy``. To get waves cleared, before a step in
    which friendly bullets are about to hit aliens (that are not moving), with probability ``clear_prob``
    all other aliens are removed (the same mask goes to plastix)."""
    env, rec = recorded_env("space_invaders", seed, sticky, ramping)
    env.reset()
    assert rec.take() == []
    rng = np.random.RandomState(seed + 10_000)
    last = 0
    out = {"action": [], "keep": [], "obs": [], "reward": [], "terminal": [], "state": []}
    for _ in range(steps):
        keep = np.ones((10, 10), bool)
        game = env.env
        doomed = (game.alien_map[:9] != 0) & (game.f_bullet_map[1:] != 0)
        if doomed.any() and game.alien_move_timer != 0 and rng.rand() < clear_prob:
            keep[9] = False
            keep[:9] = doomed
            game.alien_map[~keep] = 0
        action = policy(env.env, rng)
        reward, terminal = env.act(action)
        calls = rec.take()
        assert [c.method for c in calls] == ["rand"], "SpaceInvaders should draw only the sticky uniform"
        executed = last if calls[0].value < sticky else action
        assert executed == env.last_action
        last = executed
        for name, value in (("action", executed), ("keep", keep), ("obs", env.state())):
            out[name].append(value)
        out["reward"].append(reward)
        out["terminal"].append(terminal)
        out["state"].append(snapshot(env.env))
        if terminal:
            env.reset()
            assert rec.take() == []
    out = {k: np.asarray(v) for k, v in out.items() if k != "state"} | {"state": out["state"]}
    out["state"] = {name: np.stack([s[name] for s in out["state"]]) for name in FIELDS}
    return out


def assert_lockstep(ref: dict, ramping: bool, auto_reset: bool = True) -> None:
    """plastix replays the executed actions; the first step where anything differs is reported."""
    states, obs, rewards, terminals = rollout(ref["action"], ref["keep"], ramping, auto_reset)
    bad = np.zeros(len(ref["action"]), bool)
    bad |= (obs != ref["obs"]).reshape(len(bad), -1).any(axis=1)
    bad |= rewards != ref["reward"]
    bad |= terminals != ref["terminal"]
    states = as_reference(states)
    for name in FIELDS:
        bad |= (states[name] != ref["state"][name]).reshape(len(bad), -1).any(axis=1)
    assert not bad.any(), f"first mismatch at step {np.flatnonzero(bad)[0]} of {len(bad)}"


# --- (a) lockstep from resets -------------------------------------------------------------------------


def test_game_metadata_matches_reference():
    game = Env()
    assert (GAME.name, GAME.title) == ("space_invaders", "SpaceInvaders")
    assert GAME.channels == tuple(sorted(game.channels, key=game.channels.get))
    assert list(GAME.minimal_actions) == game.minimal_action_set()
    assert_states_equal(GAME.reset(()), snapshot(game))
    np.testing.assert_array_equal(np.asarray(GAME.observe(GAME.reset(()))), game.state())


@pytest.mark.parametrize(
    ("seed", "steps", "sticky", "ramping"), [(0, 1500, 0.1, True), (1, 1000, 0.1, True), (2, 800, 0.0, False)]
)
def test_lockstep_random_actions(seed, steps, sticky, ramping):
    ref = reference_run(seed, steps, sticky, ramping, random_policy)
    assert ref["terminal"].sum() >= 5 and ref["reward"].sum() > 0
    assert_lockstep(ref, ramping)


@pytest.mark.parametrize("ramping", [True, False])
def test_lockstep_through_wave_clears(ramping):
    ref = reference_run(3, 1500, 0.1, ramping, hunter_policy, clear_prob=0.3)
    intervals = ref["state"]["enemy_move_interval"]
    if ramping:
        assert intervals.min() == 6, "the run should ramp the alien speed all the way down"
    else:
        assert (intervals == 12).all()
    assert ref["reward"].max() >= 1 and ref["terminal"].sum() >= 2
    assert_lockstep(ref, ramping)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_lockstep_long(seed):
    for ramping, sticky, policy, clear in [
        (True, 0.1, random_policy, 0),
        (False, 0.0, random_policy, 0),
        (True, 0.1, hunter_policy, 0),
        (True, 0.1, hunter_policy, 0.3),
        (False, 0.1, hunter_policy, 0.3),
    ]:
        ref = reference_run(100 + seed, 10_000, sticky, ramping, policy, clear_prob=clear)
        assert_lockstep(ref, ramping)


# --- (b) perturb-and-inject ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ramping", "interval", "expected"), [(True, 12, 11), (True, 7, 6), (True, 6, 6), (False, 12, 12)]
)
def test_wave_clear_refills_ramps_and_keeps_timers(ramping, interval, expected):
    game = game_with(
        ramping,
        pos=4,
        alien_map=grid((3, 4)),
        f_bullet_map=grid((4, 4), (7, 1)),
        e_bullet_map=grid((5, 6)),
        enemy_move_interval=interval,
        alien_move_timer=5,
        alien_shot_timer=4,
        shot_timer=2,
        ramp_index=3,
        alien_dir=1,
    )
    reward, terminal = check_step(game, N)
    assert reward == 1 and not terminal
    np.testing.assert_array_equal(game.alien_map, grid(*[(r, c) for r in range(4) for c in range(2, 8)]))
    assert game.enemy_move_interval == expected and game.ramp_index == 3 + (expected != interval)
    assert (game.alien_move_timer, game.alien_shot_timer, game.shot_timer, game.alien_dir) == (4, 3, 1, 1)
    assert game.f_bullet_map[6, 1] == 1 and game.e_bullet_map[6, 6] == 1  # bullets survive the refill
    for action in (N, F, N):  # the refilled wave keeps stepping with the old timers
        check_step(game, action)


def test_wave_cleared_on_a_move_step_moves_again_at_once():
    game = game_with(
        pos=0, alien_map=grid((3, 5)), f_bullet_map=grid((4, 4)), alien_move_timer=0, alien_dir=-1
    )
    assert check_step(game, N) == (1, False)
    assert game.alien_move_timer == 0 and game.enemy_move_interval == 11
    check_step(game, N)
    assert game.alien_map[0, 1] == 1 and game.alien_map[0, 7] == 0  # the new wave stepped left


def test_wave_clear_ramps_down_to_six():
    game = game_with(True, pos=9, alien_move_timer=3)
    for _ in range(8):
        game.alien_move_timer = 3
        game.alien_map = grid((2, 5))
        game.f_bullet_map = grid((3, 5))
        game.e_bullet_map[:] = 0
        assert check_step(game, N)[0] == 1
    assert game.enemy_move_interval == 6 and game.ramp_index == 6


@pytest.mark.parametrize("pos", range(10))
def test_enemy_fire_from_the_alien_nearest_the_cannon(pos):
    rng = np.random.RandomState(pos)
    for density in (0.03, 0.1, 0.3):
        for _ in range(4):
            aliens = (rng.rand(10, 10) < density).astype(float)
            aliens[rng.randint(10), rng.randint(10)] = 1
            game = game_with(
                pos=pos, alien_map=aliens, alien_shot_timer=0, alien_move_timer=1 + rng.randint(3)
            )
            check_step(game, int(rng.choice([N, L, R])))
            assert game.alien_shot_timer == 9 and game.e_bullet_map.sum() == 1


def test_enemy_fire_ties_go_left_and_pick_the_lowest_alien():
    game = game_with(pos=5, alien_map=grid((1, 3), (4, 3), (6, 7), (0, 9)), alien_shot_timer=0)
    check_step(game, N)
    np.testing.assert_array_equal(game.e_bullet_map, grid((4, 3)))
    game = game_with(pos=5, alien_map=grid((1, 6), (2, 4), (7, 4)), alien_shot_timer=0)
    check_step(game, N)
    np.testing.assert_array_equal(game.e_bullet_map, grid((7, 4)))


@pytest.mark.parametrize("action", [N, L, R, F])
@pytest.mark.parametrize("column", [3, 4, 5])
def test_enemy_bullet_hits_the_cannon_at_its_new_column(action, column):
    game = game_with(pos=4, e_bullet_map=grid((8, column), (9, 4)), alien_move_timer=5)
    new_pos = {L: 3, R: 5}.get(action, 4)
    _, terminal = check_step(game, action)
    assert terminal == (column == new_pos)


def test_terminal_game_absorbs():
    game = game_with(pos=2, e_bullet_map=grid((8, 2)), f_bullet_map=grid((5, 4)), shot_timer=3)
    assert check_step(game, N) == (0, True)
    before = snapshot(game)
    for action in range(6):
        assert check_step(game, action) == (0, True)
    assert_states_equal(GAME.from_minatar(game), before)


@pytest.mark.parametrize(
    ("name", "attrs", "action", "terminal"),
    [
        ("standing on row 9 at the cannon", dict(pos=4, alien_map=grid((9, 4)), alien_move_timer=3), N, True),
        (
            "cannon walks under a row 9 alien",
            dict(pos=4, alien_map=grid((9, 5)), alien_move_timer=3),
            R,
            True,
        ),
        (
            "row 9 alien moves onto the cannon",
            dict(pos=4, alien_map=grid((9, 5)), alien_move_timer=0),
            N,
            True,
        ),
        (
            "row 9 alien moves away",
            dict(pos=4, alien_map=grid((9, 5)), alien_move_timer=0, alien_dir=1),
            N,
            False,
        ),
        ("descends onto the cannon", dict(pos=0, alien_map=grid((8, 0)), alien_move_timer=0), N, True),
        ("descends beside the cannon", dict(pos=1, alien_map=grid((8, 0)), alien_move_timer=0), N, False),
        (
            "edge move with row 9 occupied",
            dict(pos=7, alien_map=grid((9, 0), (5, 0)), alien_move_timer=0),
            N,
            True,
        ),
        (
            "edge move right with row 9 occupied",
            dict(pos=2, alien_map=grid((9, 9)), alien_move_timer=0, alien_dir=1),
            N,
            True,
        ),
    ],
)
def test_aliens_reaching_row_9(name, attrs, action, terminal):
    game = game_with(**attrs)
    assert check_step(game, action)[1] == terminal, name


def test_edge_descent_wraps_row_9_to_row_0():
    game = game_with(pos=7, alien_map=grid((9, 0), (5, 0)), alien_move_timer=0)
    assert check_step(game, N) == (0, True)
    np.testing.assert_array_equal(game.alien_map, grid((0, 0), (6, 0)))


@pytest.mark.parametrize(
    ("cells", "direction", "moved", "flipped"),
    [
        (((2, 0), (3, 4)), -1, ((3, 0), (4, 4)), True),
        (((2, 9), (3, 4)), 1, ((3, 9), (4, 4)), True),
        (((2, 0), (3, 4)), 1, ((2, 1), (3, 5)), False),
        (((2, 9), (3, 4)), -1, ((2, 8), (3, 3)), False),
        (((2, 3),), -1, ((2, 2),), False),
    ],
)
def test_edge_moves(cells, direction, moved, flipped):
    game = game_with(
        pos=5, alien_map=grid(*cells), alien_dir=direction, alien_move_timer=0, enemy_move_interval=9
    )
    assert check_step(game, N) == (0, False)
    np.testing.assert_array_equal(game.alien_map, grid(*moved))
    assert game.alien_dir == (-direction if flipped else direction)
    assert game.alien_move_timer == len(cells) - 1  # min(aliens, interval), then the end-of-step decrement


def test_several_kills_in_one_step():
    game = game_with(
        pos=0,
        alien_map=grid((2, 3), (5, 3), (4, 6), (0, 9)),
        f_bullet_map=grid((3, 3), (6, 3), (5, 6), (1, 1)),
        alien_move_timer=4,
    )
    assert check_step(game, N) == (3, False)
    # aliens stepping into bullets: the block moves right onto two bullets
    game = game_with(
        pos=9,
        alien_map=grid((1, 2), (1, 4), (2, 6)),
        f_bullet_map=grid((2, 3), (2, 5), (8, 8)),
        alien_move_timer=0,
        alien_dir=1,
    )
    assert check_step(game, N) == (2, False)


def test_fire_respects_the_cool_down():
    game = game_with(pos=3, alien_move_timer=8)
    check_step(game, F)
    assert game.f_bullet_map[8, 3] == 1 and game.shot_timer == 4
    for _ in range(4):
        check_step(game, F)
        assert game.f_bullet_map[8].sum() == 0
    check_step(game, F)
    assert game.f_bullet_map[8, 3] == 1 and game.shot_timer == 4
    game = game_with(pos=3, f_bullet_map=grid((0, 0), (4, 0)), alien_move_timer=8)
    check_step(game, N)
    np.testing.assert_array_equal(game.f_bullet_map, grid((3, 0)))  # row 0 left the screen


def test_random_states_batched():
    """Random reference states (any maps, timers, direction, interval) and actions, stepped as one batch."""
    rng = np.random.RandomState(7)
    games, actions = [], []
    for _ in range(BATCH):
        game = game_with(
            bool(rng.rand() < 0.7),
            pos=rng.randint(10),
            alien_map=(rng.rand(10, 10) < rng.choice([0.0, 0.03, 0.15, 0.4])).astype(float),
            f_bullet_map=(rng.rand(10, 10) < 0.15).astype(float),
            e_bullet_map=(rng.rand(10, 10) < 0.1).astype(float),
            alien_dir=int(rng.choice([-1, 1])),
            enemy_move_interval=rng.randint(6, 13),
            alien_move_timer=rng.randint(0, 3),
            alien_shot_timer=rng.randint(0, 3),
            shot_timer=rng.randint(0, 6),
            ramp_index=rng.randint(0, 7),
        )
        if not game.alien_map.any() and game.alien_shot_timer == 0:
            game.alien_shot_timer = 1  # the reference has no shooter then (it raises)
        games.append(game)
        actions.append(rng.randint(6))
    counts = dict.fromkeys(("terminal", "multi_kill", "refill", "ramp", "descend", "shoot"), 0)
    batch = jax.tree.map(lambda *xs: np.stack(xs), *[GAME.from_minatar(g) for g in games])
    ramping = np.asarray([g.ramping for g in games])
    out = batch_step_fn()(batch, jnp.asarray(actions, jnp.int32), ramping)
    states, rewards, terminals, obs = jax.tree.map(np.asarray, out)
    for i, game in enumerate(games):
        full_before, dir_before = game.alien_map[0:4, 2:8].all(), game.alien_dir
        interval_before, shot = game.enemy_move_interval, game.alien_shot_timer == 0
        reward, terminal = game.act(actions[i])
        assert_states_equal(jax.tree.map(lambda x, i=i: x[i], states), snapshot(game), where=f"case {i}")
        np.testing.assert_array_equal(np.asarray(obs[i]), game.state(), err_msg=f"case {i}")
        assert float(rewards[i]) == reward and bool(terminals[i]) == terminal, f"case {i}"
        counts["terminal"] += terminal
        counts["multi_kill"] += reward >= 2
        counts["refill"] += not full_before and game.alien_map[0:4, 2:8].all()
        counts["ramp"] += game.enemy_move_interval != interval_before
        counts["descend"] += game.alien_dir != dir_before
        counts["shoot"] += shot
    assert min(counts.values()) >= 5, counts


# --- draws and properties -----------------------------------------------------------------------------


def test_draws_are_empty_pytrees():
    keys = jax.random.split(jax.random.key(0), 8)
    assert jax.tree.leaves(jax.vmap(GAME.draw_reset)(keys)) == []
    state = GAME.reset(GAME.draw_reset(keys[0]))
    assert jax.tree.leaves(GAME.draw_step(keys[1], state)) == []
    assert_states_equal(state, snapshot(Env()))


def test_vmapped_step_matches_single_steps():
    ref = reference_run(11, BATCH, 0.1, True, random_policy)
    states = rollout(ref["action"], ref["keep"], True, True)[0]
    rng = np.random.RandomState(0)
    actions, ramping = rng.randint(6, size=BATCH).astype(np.int32), rng.rand(BATCH) < 0.5
    batched = jax.tree.map(np.asarray, batch_step_fn()(states, actions, ramping))
    for t in range(0, BATCH, 7):
        single = step_fn()(jax.tree.map(lambda x, t=t: x[t], states), actions[t], ramping[t])
        picked = jax.tree.map(lambda x, t=t: x[t], batched)
        for a, b in zip(jax.tree.leaves(single), jax.tree.leaves(picked), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@settings(max_examples=30, deadline=None)
@given(actions=st.lists(st.integers(0, 5), min_size=150, max_size=150), ramping=st.booleans())
def test_property_random_action_sequences(actions, ramping):
    """Any action sequence (no sticky, no reset): plastix equals the reference at every step, rewards are
    whole and >= 0, the observation is well formed, and a terminal state absorbs."""
    game = Env(ramping=ramping)
    states, obs, rewards, terminals = rollout(actions, np.ones((len(actions), 10, 10), bool), ramping, False)
    for t, action in enumerate(actions):
        reward, terminal = game.act(action)
        np.testing.assert_array_equal(obs[t], game.state(), err_msg=f"step {t}")
        assert (rewards[t], terminals[t]) == (reward, terminal), f"step {t}"
    assert (rewards >= 0).all() and (rewards == np.round(rewards)).all()
    cannon, alien, left, right = obs[..., 0], obs[..., 1], obs[..., 2], obs[..., 3]
    assert (cannon.sum(axis=(1, 2)) == 1).all() and cannon[:, 9].any(axis=1).all()
    np.testing.assert_array_equal(left | right, alien)
    assert not (left & right).any() and (alien.sum(axis=(1, 2)) <= 24).all()
    assert (np.diff(terminals.astype(int)) >= 0).all()
    ended = np.flatnonzero(terminals)
    if len(ended):
        first = ended[0]
        assert (obs[first:] == obs[first]).all() and (rewards[first + 1 :] == 0).all()
        for name in FIELDS:
            leaf = np.asarray(getattr(states, name))
            assert (leaf[first:] == leaf[first]).all(), name
