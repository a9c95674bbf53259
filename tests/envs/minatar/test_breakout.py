"""plastix's Breakout against the reference minatar 1.0.15: lockstep runs fed the reference's recorded
draws, imported states in the rare branches (strike, refill, paddle, walls), the reset draw's
distribution, and properties of every reachable step."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minatar import Environment
from minatar.environments.breakout import Env as BreakoutEnv
from scipy import stats

from plastix.envs.minatar.breakout import GAME, BreakoutState
from plastix.envs.minatar.game import to_grid
from tests.envs.minatar.recording import recorded_env

FIELDS = [f.name for f in dataclasses.fields(BreakoutState)]


@functools.cache
def _step(ramping: bool = True):
    return jax.jit(lambda s, a: GAME.step(s, a, (), ramping))


@functools.cache
def _observe():
    return jax.jit(GAME.observe)


@functools.cache
def _run(ramping: bool):
    """Steps plastix's game along a recorded trajectory in one scan, resetting where the reference did."""

    def run(state, actions, resets, reset_draws):
        def body(s, x):
            a, again, draw = x
            s, r, t = GAME.step(s, a, (), ramping)
            obs = GAME.observe(s)
            s = jax.tree.map(lambda new, old: jnp.where(again, new, old), GAME.reset(draw), s)
            return s, (obs, r, t, GAME.observe(s))

        return jax.lax.scan(body, state, (actions, resets, reset_draws))[1]

    return jax.jit(run)


def _reset_draw(calls) -> int:
    assert [(c.method, c.args) for c in calls] == [("randint", (2,))]
    return int(calls[0].value)


def random_policy(env, rng) -> int:
    return int(rng.integers(6))


_SIM = BreakoutEnv()


def _landing(game) -> tuple[int, int]:
    """Where the ball will be on row 8 moving down (column, horizontal step), simulated on a copy."""
    _SIM.ball_x, _SIM.ball_y, _SIM.ball_dir = game.ball_x, game.ball_y, game.ball_dir
    _SIM.strike = game.strike
    _SIM.brick_map, _SIM.terminal, _SIM.pos = game.brick_map.copy(), False, -5
    for _ in range(40):
        if _SIM.ball_y == 8 and _SIM.ball_dir in (2, 3):
            return _SIM.ball_x, 1 if _SIM.ball_dir == 2 else -1
        _SIM.act(0)
    return game.ball_x, 0


def aiming_policy(env, rng) -> int:
    """Moves the paddle under the ball's landing column or the next one (5% random actions), so episodes
    last, both paddle bounces happen and the wall gets cleared."""
    if rng.random() < 0.05:
        return int(rng.integers(6))
    game = env.env
    x, dx = _landing(game)
    target = min(9, max(0, x + (dx if (game.ball_x + game.ball_y // 4) % 2 else 0)))
    gap = target - game.pos
    return 3 if gap > 0 else 1 if gap < 0 else 0


def record(seed: int, sticky: float, ramping: bool, steps: int, policy):
    """The reference's trajectory: executed actions, where it reset (and the reset's draw), and what it
    showed, rewarded and ended after each step (and after each reset)."""
    env, rec = recorded_env("breakout", seed, sticky, ramping)
    env.reset()
    first = _reset_draw(rec.take()), env.state()
    rng = np.random.default_rng(seed + 7)
    out = {k: [] for k in ("action", "reset", "draw", "obs", "reward", "terminal", "obs_after", "bricks")}
    last = 0
    for _ in range(steps):
        chosen = policy(env, rng)
        reward, terminal = env.act(chosen)
        calls = rec.take()
        assert [(c.method, c.args) for c in calls] == [("rand", ())]  # the sticky draw, nothing else
        a = last if calls[0].value < sticky else chosen
        assert a == env.last_action
        last = a
        out["action"].append(a)
        out["obs"].append(env.state())
        out["reward"].append(reward)
        out["terminal"].append(terminal)
        out["bricks"].append(np.count_nonzero(env.env.brick_map))
        if terminal:
            env.reset()
            out["draw"].append(_reset_draw(rec.take()))
        else:
            out["draw"].append(0)
        out["reset"].append(terminal)
        out["obs_after"].append(env.state())
    return first, {k: np.asarray(v) for k, v in out.items()}


def check_lockstep(seed: int, sticky: float, ramping: bool, steps: int, policy=random_policy) -> dict:
    (first, first_obs), ref = record(seed, sticky, ramping, steps, policy)
    state = GAME.reset(jnp.int32(first))
    np.testing.assert_array_equal(np.asarray(_observe()(state)), first_obs)
    obs, reward, terminal, obs_after = (
        np.asarray(x)
        for x in _run(ramping)(
            state,
            jnp.asarray(ref["action"], jnp.int32),
            jnp.asarray(ref["reset"]),
            jnp.asarray(ref["draw"], jnp.int32),
        )
    )
    for name, mine, theirs in [
        ("reward", reward, ref["reward"]),
        ("terminal", terminal, ref["terminal"]),
        ("observation", obs, ref["obs"]),
        ("observation after reset", obs_after, ref["obs_after"]),
    ]:
        bad = np.flatnonzero((mine != theirs).reshape(steps, -1).any(axis=1))
        assert bad.size == 0, f"{name} differs first at step {bad[0] if bad.size else None} (seed {seed})"
    return ref


class _Fixed:
    """A stand-in random stream whose ``randint`` returns one value."""

    def __init__(self, value: int) -> None:
        self.value = value

    def randint(self, *args, **kwargs) -> int:
        return self.value


def _reference_reset_obs(draw: int) -> np.ndarray:
    env = Environment("breakout")
    env.env.random = _Fixed(draw)
    env.reset()
    return env.state()


# (a) lockstep from resets ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_lockstep_sticky_ramping(seed):
    ref = check_lockstep(seed, sticky=0.1, ramping=True, steps=1000)
    assert ref["reset"].sum() >= 10  # random play ends many episodes: resets are part of the check


def test_lockstep_no_sticky_no_ramping():
    check_lockstep(2, sticky=0.0, ramping=False, steps=1000)


def test_lockstep_long_episodes_refill():
    ref = check_lockstep(3, sticky=0.0, ramping=False, steps=1000, policy=aiming_policy)
    refills = (ref["bricks"][:-1] == 0) & (ref["bricks"][1:] == 30)
    assert refills.sum() >= 1  # the wall was cleared and refilled within the lockstep run


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 15))
@pytest.mark.parametrize("sticky,ramping,policy", [
    (0.1, True, random_policy), (0.0, False, random_policy), (0.1, True, aiming_policy),
])
def test_lockstep_long(seed, sticky, ramping, policy):
    ref = check_lockstep(seed, sticky, ramping, 10_000, policy)
    if policy is aiming_policy:
        assert ((ref["bricks"][:-1] == 0) & (ref["bricks"][1:] == 30)).any()  # refilled under sticky actions


# (b) perturb and inject ----------------------------------------------------------------------------------


def reference_game(**attrs):
    """A reference game object (``Environment(...).env``) with the given attributes set."""
    env = Environment("breakout", sticky_action_prob=0.0)
    game = env.env
    for k, v in attrs.items():
        if k == "bricks":
            game.brick_map = np.zeros((10, 10))
            for y, x in v:
                game.brick_map[y, x] = 1
        else:
            setattr(game, k, v)
    game.last_x = attrs.get("last_x", game.ball_x)
    game.last_y = attrs.get("last_y", game.ball_y)
    return game


def assert_same_state(mine: BreakoutState, game, where: str = "") -> None:
    theirs = GAME.from_minatar(game)
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(mine, f)), np.asarray(getattr(theirs, f)),
                                      err_msg=f"{f} {where}")


def step_both(game, action: int, ramping: bool = True):
    """Steps an imported state and the reference object once; returns plastix's (state, reward, terminal)."""
    state = GAME.from_minatar(game)
    s, r, t = _step(ramping)(state, jnp.int32(action))
    ref_r, ref_t = game.act(action)
    assert float(r) == ref_r and bool(t) == ref_t
    assert_same_state(s, game, f"after action {action}")
    np.testing.assert_array_equal(np.asarray(_observe()(s)), game.state())
    return s, float(r), bool(t)


FULL_WALL = [(y, x) for y in (1, 2, 3) for x in range(10)]


def test_strike_flag_enters_a_brick_without_breaking_it():
    # the ball left a brick last step (strike set) and its next cell holds another brick
    game = reference_game(ball_x=5, ball_y=5, ball_dir=1, strike=True, bricks=[(4, 6)], pos=0)
    s, r, _ = step_both(game, 0)
    assert r == 0 and (int(s.ball_x), int(s.ball_y)) == (6, 4) and bool(to_grid(s.bricks)[4, 6])
    assert bool(s.strike)  # still inside a brick: the flag stays, so the next brick cell is not broken either
    game.brick_map[3, 7] = 1
    s, r, _ = step_both(game, 0)
    assert r == 0 and bool(to_grid(s.bricks)[3, 7]) and (int(s.ball_x), int(s.ball_y)) == (7, 3)


def test_brick_breaks_without_strike_then_strike_clears():
    game = reference_game(ball_x=5, ball_y=5, ball_dir=0, strike=False, bricks=[(4, 4)], pos=0)
    s, r, _ = step_both(game, 0)
    assert r == 1 and not bool(to_grid(s.bricks)[4, 4]) and (int(s.ball_x), int(s.ball_y)) == (4, 5)
    assert int(s.ball_dir) == 3 and bool(s.strike)
    s, r, _ = step_both(game, 0)  # into an empty cell: the flag clears
    assert not bool(s.strike)


def test_strike_after_break_chain_from_a_full_wall():
    game = reference_game(ball_x=2, ball_y=5, ball_dir=1, bricks=FULL_WALL, pos=9)
    rewards = [step_both(game, a)[1] for a in [0, 3, 1, 5, 2, 4, 0, 0]]
    assert sum(rewards) >= 1


@pytest.mark.parametrize("caught", ["straight", "reversed", "missed"])
def test_refill_only_at_row_9_with_no_bricks(caught):
    # ball on row 8 moving down-right from x 4 to 5; the paddle moves from 5 this step (action l / r / n)
    action = {"straight": 1, "reversed": 0, "missed": 3}[caught]
    game = reference_game(ball_x=4, ball_y=8, ball_dir=2, bricks=[], pos=5)
    s, r, t = step_both(game, action)
    bricks = np.asarray(to_grid(s.bricks))
    assert bricks[1:4].all() and int(bricks.sum()) == 30  # refilled, even when lost
    assert t == (caught == "missed")
    assert int(s.ball_dir) == {"straight": 1, "reversed": 0, "missed": 2}[caught]


def test_no_refill_away_from_row_9_or_with_bricks_left():
    game = reference_game(ball_x=4, ball_y=6, ball_dir=2, bricks=[], pos=5)
    s, _, _ = step_both(game, 0)  # row 7: no refill even with the wall empty
    assert not bool(to_grid(s.bricks).any())
    game = reference_game(ball_x=4, ball_y=8, ball_dir=2, bricks=[(0, 0)], pos=5)
    s, _, _ = step_both(game, 0)  # row 9 with one brick left anywhere: no refill
    assert int(to_grid(s.bricks).sum()) == 1


@pytest.mark.parametrize("ball_x,ball_dir", [(3, 2), (3, 3), (6, 3), (0, 3), (9, 2)])
@pytest.mark.parametrize("pos", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize("action", [0, 1, 3])
def test_paddle_bounce_uses_old_and_new_x_with_the_new_paddle(ball_x, ball_dir, pos, action):
    game = reference_game(ball_x=ball_x, ball_y=8, ball_dir=ball_dir, bricks=FULL_WALL, pos=pos)
    step_both(game, action)


@pytest.mark.parametrize("x,y,d", [
    (0, 0, 0), (9, 0, 1), (0, 5, 0), (0, 5, 3), (9, 5, 1), (9, 5, 2), (4, 0, 0), (4, 0, 1),
    (0, 8, 3), (9, 8, 2), (0, 2, 0), (9, 2, 1),
])
def test_wall_and_corner_reflections(x, y, d):
    game = reference_game(ball_x=x, ball_y=y, ball_dir=d, bricks=[(1, 1), (1, 8)], pos=x)
    for _ in range(3):
        if game.terminal:
            break
        step_both(game, 0)


def test_corner_reflection_reverses_both_components():
    game = reference_game(ball_x=0, ball_y=0, ball_dir=0, bricks=[], pos=0)
    s, _, _ = step_both(game, 0)
    assert (int(s.ball_x), int(s.ball_y), int(s.ball_dir)) == (0, 0, 2)


def test_terminal_state_absorbs():
    game = reference_game(ball_x=4, ball_y=8, ball_dir=2, bricks=FULL_WALL, pos=0)
    _, _, t = step_both(game, 0)
    assert t
    before = GAME.from_minatar(game)
    s, r, t = step_both(game, 3)
    assert r == 0 and t
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(s, f)), np.asarray(getattr(before, f)))


@st.composite
def reference_states(draw):
    """Any reference state the rules can index: ball on rows 0..8, bricks anywhere."""
    bricks = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), max_size=30))
    if draw(st.booleans()):
        bricks = FULL_WALL if draw(st.booleans()) else []
    return dict(
        ball_x=draw(st.integers(0, 9)), ball_y=draw(st.integers(0, 8)), ball_dir=draw(st.integers(0, 3)),
        pos=draw(st.integers(0, 9)), strike=draw(st.booleans()), bricks=bricks,
    )


@settings(max_examples=60, deadline=None)
@given(attrs=reference_states(), actions=st.lists(st.integers(0, 5), min_size=1, max_size=8))
def test_imported_states_step_like_the_reference(attrs, actions):
    game = reference_game(**attrs)
    for a in actions:
        step_both(game, a, ramping=bool(a % 2))  # ramping is ignored either way


# (c) the draws' distribution ------------------------------------------------------------------------------


def test_reset_draw_is_a_fair_coin_like_randint_2():
    draws = np.asarray(jax.jit(jax.vmap(GAME.draw_reset))(jax.random.split(jax.random.key(0), 20_000)))
    assert draws.dtype == np.int32 and set(np.unique(draws)) == {0, 1}
    counts = np.bincount(draws, minlength=2)
    assert stats.chisquare(counts).pvalue > 1e-3
    reference = np.bincount(np.random.RandomState(0).randint(2, size=20_000), minlength=2)
    assert stats.chi2_contingency(np.stack([counts, reference])).pvalue > 1e-3


def test_reset_draws_place_the_ball_like_the_reference():
    for draw in (0, 1):
        np.testing.assert_array_equal(np.asarray(_observe()(GAME.reset(jnp.int32(draw)))),
                                      _reference_reset_obs(draw))


def test_step_draws_nothing():
    state = GAME.reset(jnp.int32(0))
    assert jax.vmap(GAME.draw_step)(jax.random.split(jax.random.key(0), 4), jax.vmap(lambda _: state)(
        jnp.arange(4))) == ()


# properties ------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(draw=st.integers(0, 1), actions=st.lists(st.integers(0, 5), min_size=1, max_size=60))
def test_reachable_observations_are_one_hot_and_rewards_binary(draw, actions):
    s = GAME.reset(jnp.int32(draw))
    done = False
    for a in actions:
        before = s
        s, r, t = _step()(s, jnp.int32(a))
        obs = np.asarray(_observe()(s))
        assert obs.shape == (10, 10, 4) and obs.dtype == bool
        assert (obs[..., :3].reshape(100, 3).sum(axis=0) == 1).all()  # paddle, ball, trail: one cell each
        assert obs[9, :, 0].any()
        assert float(r) in (0.0, 1.0)
        if done:
            assert float(r) == 0.0 and bool(t)
            for f in FIELDS:
                np.testing.assert_array_equal(np.asarray(getattr(s, f)), np.asarray(getattr(before, f)))
        done = bool(t)
