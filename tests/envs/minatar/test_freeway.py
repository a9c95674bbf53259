"""plastix's Freeway against the reference minatar 1.0.15: lockstep runs fed the reference's recorded
draws (through the 2,501-step end), imported states in the rare branches (crossings, collisions, the
last step), the car re-draw's distribution, and properties of every reachable step."""

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
from scipy import stats

from plastix.envs.minatar.freeway import GAME, CarDraws, FreewayState
from tests.envs.minatar.recording import RecordingRandom, recorded_env

FIELDS = [f.name for f in dataclasses.fields(FreewayState)]
EPISODE = 2501  # act() calls in an episode, the last one terminal


@functools.cache
def _step(ramping: bool = True):
    return jax.jit(lambda s, a, d: GAME.step(s, a, d, ramping))


@functools.cache
def _observe():
    return jax.jit(GAME.observe)


@functools.cache
def _run(ramping: bool):
    """Steps plastix's game along a recorded trajectory in one scan, resetting where the reference did."""

    def run(state, actions, draws, resets, reset_draws):
        def body(s, x):
            a, d, again, rd = x
            s, r, t = GAME.step(s, a, d, ramping)
            obs = GAME.observe(s)
            s = jax.tree.map(lambda new, old: jnp.where(again, new, old), GAME.reset(rd), s)
            return s, (obs, r, t, GAME.observe(s), s.terminate_timer)

        return jax.lax.scan(body, state, (actions, draws, resets, reset_draws))[1]

    return jax.jit(run)


def car_draws(calls) -> CarDraws:
    """The draws of one car re-draw, from the reference's recorded ``randint(1, 6, 8)`` and ``rand(8)``."""
    assert [(c.method, c.args) for c in calls] == [("randint", (1, 6, 8)), ("rand", (8,))]
    # the reference multiplies the recorded speeds array by the directions in place
    speeds = np.abs(calls[0].value).astype(np.int32)
    return CarDraws(speeds=speeds, directions=np.sign(calls[1].value - 0.5).astype(np.int32))


def junk_draws(rng) -> CarDraws:
    """Valid but unrelated draws, fed on steps where the reference drew nothing: they must not matter."""
    return CarDraws(speeds=rng.integers(1, 6, 8).astype(np.int32),
                    directions=rng.choice([-1, 1], 8).astype(np.int32))


def random_policy(env, rng) -> int:
    return int(rng.integers(6))


def upward_policy(env, rng) -> int:
    """Mostly 'u', so the chicken crosses (and gets hit) often."""
    return 2 if rng.random() < 0.7 else int(rng.integers(6))


def _stack(draws: list[CarDraws]) -> CarDraws:
    return jax.tree.map(lambda *x: np.stack(x), *draws)


def record(seed: int, sticky: float, ramping: bool, steps: int, policy):
    """The reference's trajectory: executed actions, each step's draws (junk where it drew none), where
    it reset (and the reset's draws), and what it showed, rewarded and ended."""
    env, rec = recorded_env("freeway", seed, sticky, ramping)
    env.reset()
    first = car_draws(rec.take()), env.state()
    rng = np.random.default_rng(seed + 7)
    out = {k: [] for k in ("action", "crossed", "reset", "obs", "reward", "terminal", "obs_after", "timer")}
    draws, reset_draws = [], []
    last = 0
    for _ in range(steps):
        chosen = policy(env, rng)
        reward, terminal = env.act(chosen)
        calls = rec.take()
        assert (calls[0].method, calls[0].args) == ("rand", ())  # the sticky draw
        a = last if calls[0].value < sticky else chosen
        assert a == env.last_action
        last = a
        crossed = len(calls) > 1
        assert crossed == (reward == 1)  # the cars are re-drawn on a crossing and only then
        draws.append(car_draws(calls[1:]) if crossed else junk_draws(rng))
        out["action"].append(a)
        out["crossed"].append(crossed)
        out["obs"].append(env.state())
        out["reward"].append(reward)
        out["terminal"].append(terminal)
        out["timer"].append(env.env.terminate_timer)
        if terminal:
            env.reset()
            reset_draws.append(car_draws(rec.take()))
        else:
            reset_draws.append(junk_draws(rng))
        out["reset"].append(terminal)
        out["obs_after"].append(env.state())
    ref = {k: np.asarray(v) for k, v in out.items()}
    return first, ref, _stack(draws), _stack(reset_draws)


def check_lockstep(seed: int, sticky: float, ramping: bool, steps: int, policy=random_policy) -> dict:
    (first, first_obs), ref, draws, reset_draws = record(seed, sticky, ramping, steps, policy)
    state = GAME.reset(first)
    np.testing.assert_array_equal(np.asarray(_observe()(state)), first_obs)
    obs, reward, terminal, obs_after, timer = (
        np.asarray(x)
        for x in _run(ramping)(
            state, jnp.asarray(ref["action"], jnp.int32), draws, jnp.asarray(ref["reset"]), reset_draws
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
    np.testing.assert_array_equal(timer[~ref["reset"]], ref["timer"][~ref["reset"]])
    return ref


def _episode_ends(ref: dict) -> list[int]:
    return (np.flatnonzero(ref["terminal"]) + 1).tolist()


# (a) lockstep from resets ------------------------------------------------------------------------------


def test_lockstep_sticky_ramping_through_the_time_limit():
    ref = check_lockstep(0, sticky=0.1, ramping=True, steps=EPISODE + 300)
    assert _episode_ends(ref) == [EPISODE]  # terminal on act() number 2,501 and not before


def test_lockstep_no_sticky_no_ramping_crossing_often():
    ref = check_lockstep(1, sticky=0.0, ramping=False, steps=EPISODE + 300, policy=upward_policy)
    assert _episode_ends(ref) == [EPISODE]
    assert ref["crossed"].sum() >= 20
    hits = np.flatnonzero(ref["obs"][1:, 9, 4, 0] & ~ref["obs"][:-1, 9, 4, 0] & ~ref["crossed"][1:])
    assert hits.size >= 20  # pushed back to row 9 by a car, away from a crossing


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 15))
@pytest.mark.parametrize("sticky,ramping,policy", [
    (0.1, True, random_policy), (0.0, False, random_policy), (0.1, True, upward_policy),
])
def test_lockstep_long(seed, sticky, ramping, policy):
    ref = check_lockstep(seed, sticky, ramping, 4 * EPISODE + 1000, policy)
    assert _episode_ends(ref) == [EPISODE * k for k in range(1, 5)]


# (b) perturb and inject ----------------------------------------------------------------------------------


def reference_game(seed: int = 0, cars=None, **attrs):
    """A reference game object with the given attributes, its draws recorded; ``cars`` lists each
    lane's ``(x, timer, velocity)``."""
    env = Environment("freeway", sticky_action_prob=0.0)
    game = env.env
    game.random = RecordingRandom(seed)
    if cars is not None:
        game.cars = [[x, i + 1, timer, v] for i, (x, timer, v) in enumerate(cars)]
    for k, v in attrs.items():
        setattr(game, k, v)
    return game


def quiet_cars(**lanes):
    """Cars far from column 4 that will not move this step; ``lane3=(x, timer, v)`` overrides lane 3."""
    cars = [(0, 5, 5)] * 8
    for name, car in lanes.items():
        cars[int(name.removeprefix("lane")) - 1] = car
    return cars


def assert_same_state(mine: FreewayState, game, where: str = "") -> None:
    theirs = GAME.from_minatar(game)
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(mine, f)), np.asarray(getattr(theirs, f)),
                                      err_msg=f"{f} {where}")


_JUNK = np.random.default_rng(123)


def step_both(game, action: int, ramping: bool = True):
    """Steps an imported state and the reference object once with the same draws; returns plastix's
    ``(state, reward, terminal, crossed)``."""
    state = GAME.from_minatar(game)
    ref_r, ref_t = game.act(action)
    calls = game.random.take()
    draws = car_draws(calls) if calls else junk_draws(_JUNK)
    s, r, t = _step(ramping)(state, jnp.int32(action), draws)
    assert float(r) == ref_r and bool(t) == ref_t
    assert_same_state(s, game, f"after action {action}")
    np.testing.assert_array_equal(np.asarray(_observe()(s)), game.state())
    return s, float(r), bool(t), bool(calls)


def test_crossing_rewards_resets_and_redraws_the_cars():
    cars = [(x, 0, 1 + x % 5) for x in range(8)]
    game = reference_game(seed=3, cars=cars, pos=1, move_timer=0)
    before = GAME.from_minatar(game)
    s, r, _, crossed = step_both(game, 2)
    assert crossed and r == 1 and int(s.pos) == 9 and int(s.move_timer) == 2
    np.testing.assert_array_equal(np.asarray(s.car_x), np.asarray(before.car_x))  # positions kept
    assert not np.array_equal(np.asarray(s.car_v), np.asarray(before.car_v))
    # the re-drawn timers count down on the same step: no car moves on a crossing
    np.testing.assert_array_equal(np.asarray(s.car_timer), np.abs(np.asarray(s.car_v)) - 1)


def test_no_crossing_without_the_move_timer():
    game = reference_game(cars=quiet_cars(), pos=1, move_timer=1)
    s, r, _, crossed = step_both(game, 2)
    assert not crossed and r == 0 and int(s.pos) == 1 and int(s.move_timer) == 0
    s, r, _, crossed = step_both(game, 2)
    assert crossed and r == 1


@pytest.mark.parametrize("car,hit", [
    ((4, 2, 3), True),  # already on the chicken's column, not moving: hit before the move
    ((4, 0, 3), True),  # on the column, moving away this step: hit before the move
    ((3, 0, 2), True),  # moving right into the column: hit after the move
    ((5, 0, -2), True),  # moving left into the column
    ((3, 1, 2), False),  # next to it, not moving this step
    ((5, 0, 2), False),  # moving away
    ((3, 0, -2), False),
])
def test_collision_before_and_after_the_car_moves(car, hit):
    game = reference_game(cars=quiet_cars(lane5=car), pos=5, move_timer=2)
    s, _, _, _ = step_both(game, 0)
    assert (int(s.pos) == 9) == hit


def test_chicken_stepping_into_a_car_is_pushed_back():
    game = reference_game(cars=quiet_cars(lane4=(4, 3, 4)), pos=5, move_timer=0)
    s, r, _, _ = step_both(game, 2)
    assert int(s.pos) == 9 and r == 0 and int(s.move_timer) == 2


@pytest.mark.parametrize("action,pos", [(4, 9), (2, 9), (4, 3), (1, 3), (3, 3), (5, 3)])
def test_moves_and_the_move_timer(action, pos):
    game = reference_game(cars=quiet_cars(), pos=pos, move_timer=0)
    for _ in range(5):
        step_both(game, action)


def test_cars_wrap_around():
    cars = [(9, 0, 1), (0, 0, -1), (9, 0, -2), (0, 0, 3), (9, 1, 1), (0, 0, -5), (8, 0, 1), (1, 0, -1)]
    game = reference_game(cars=cars, pos=9, move_timer=3)
    for _ in range(12):
        step_both(game, 0)


def test_crossing_on_the_last_step_rewards_and_ends():
    game = reference_game(seed=5, cars=quiet_cars(), pos=1, move_timer=0, terminate_timer=0)
    s, r, t, crossed = step_both(game, 2)
    assert crossed and r == 1 and t and int(s.terminate_timer) == -1


def test_terminates_after_exactly_2501_acts():
    game = reference_game(seed=9)
    state = GAME.from_minatar(game)
    actions = np.random.default_rng(0).choice([0, 1, 3, 4, 5], EPISODE + 1)  # never 'u': no crossing
    junk = _stack([junk_draws(_JUNK)] * (EPISODE + 1))

    def body(s, x):
        s, r, t = GAME.step(s, x[0], x[1], True)
        return s, (s, r, t)

    _, (states, reward, terminal) = jax.jit(lambda s, xs: jax.lax.scan(body, s, xs))(
        state, (jnp.asarray(actions, jnp.int32), junk))
    ends = []
    for i, a in enumerate(actions[:EPISODE]):
        ends += [i + 1] if game.act(int(a))[1] else []
    assert ends == [EPISODE]
    assert np.flatnonzero(np.asarray(terminal)).tolist() == [EPISODE - 1, EPISODE]
    assert np.asarray(states.terminate_timer)[EPISODE - 1] == -1 == game.terminate_timer
    assert_same_state(jax.tree.map(lambda x: x[EPISODE - 1], states), game, "at the end")
    assert float(reward[EPISODE]) == 0.0
    for f in FIELDS:  # the terminal state absorbs
        np.testing.assert_array_equal(np.asarray(getattr(states, f))[EPISODE],
                                      np.asarray(getattr(states, f))[EPISODE - 1])


def test_terminal_state_absorbs():
    game = reference_game(cars=quiet_cars(lane3=(3, 0, 1)), pos=3, move_timer=0, terminate_timer=0)
    _, _, t, _ = step_both(game, 0)
    assert t
    before = GAME.from_minatar(game)
    s, r, t, _ = step_both(game, 2)
    assert r == 0 and t
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(s, f)), np.asarray(getattr(before, f)))


def test_speed_zero_car_after_an_exact_half_draw():
    # rand() == 0.5 gives a car velocity 0: it moves left every step, and the reference draws its trail
    # in the previous car's speed channel (a loop variable left over)
    cars = [(0, 5, 5), (3, 0, 0), (6, 2, -3), (6, 0, 0), (0, 1, 2), (1, 0, 0), (7, 0, 4), (2, 0, 0)]
    game = reference_game(cars=cars, pos=9, move_timer=3)
    for _ in range(6):
        step_both(game, 0)


@st.composite
def reference_states(draw):
    """Any reference state in play: chicken on rows 1..9, cars anywhere with timers within their speed."""
    cars = []
    for _ in range(8):
        v = draw(st.sampled_from([-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]))
        cars.append((draw(st.integers(0, 9)), draw(st.integers(0, abs(v))), v))
    return dict(
        cars=cars, pos=draw(st.integers(1, 9)), move_timer=draw(st.integers(0, 3)),
        terminate_timer=draw(st.sampled_from([0, 1, 2, 5, 100, 2500])), seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=60, deadline=None)
@given(attrs=reference_states(), actions=st.lists(st.sampled_from([0, 2, 2, 2, 4, 1]), min_size=1,
                                                  max_size=10))
def test_imported_states_step_like_the_reference(attrs, actions):
    game = reference_game(**attrs)
    for a in actions:
        step_both(game, a, ramping=bool(a % 2))  # ramping is ignored either way


# (c) the draws' distribution ------------------------------------------------------------------------------


@functools.cache
def _many_draws(n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    keys = jax.random.split(jax.random.key(0), n)
    state = GAME.reset(GAME.draw_reset(keys[0]))
    d = jax.jit(jax.vmap(GAME.draw_step, in_axes=(0, None)))(keys, state)
    return np.asarray(d.speeds), np.asarray(d.directions)


def test_draws_have_the_reference_distribution():
    speeds, directions = _many_draws()
    assert speeds.shape == directions.shape == (20_000, 8)
    assert set(np.unique(speeds)) == {1, 2, 3, 4, 5} and set(np.unique(directions)) == {-1, 1}
    assert stats.chisquare(np.bincount(speeds.ravel())[1:]).pvalue > 1e-3
    assert stats.chisquare(np.bincount(directions.ravel() + 1)[[0, 2]]).pvalue > 1e-3
    rs = np.random.RandomState(0)
    ref_v = np.stack([rs.randint(1, 6, 8) * np.sign(rs.rand(8) - 0.5).astype(int) for _ in range(20_000)])
    velocities = np.arange(-5, 6)
    mine = [(speeds * directions == v).sum() for v in velocities if v]
    theirs = [(ref_v == v).sum() for v in velocities if v]
    assert stats.chi2_contingency(np.stack([mine, theirs])).pvalue > 1e-3


def test_draws_are_independent_across_cars_and_components():
    speeds, directions = _many_draws()
    joint = np.zeros((5, 2))
    np.add.at(joint, (speeds.ravel() - 1, (directions.ravel() + 1) // 2), 1)
    assert stats.chi2_contingency(joint).pvalue > 1e-3
    pairs = np.zeros((5, 5))
    np.add.at(pairs, (speeds[:, 0] - 1, speeds[:, 1] - 1), 1)
    assert stats.chi2_contingency(pairs).pvalue > 1e-3
    assert stats.chi2_contingency(np.histogram2d(directions[:, 2], directions[:, 7], 2)[0]).pvalue > 1e-3


def test_reset_draws_start_every_car_at_column_0():
    first = GAME.reset(GAME.draw_reset(jax.random.key(1)))
    game = Environment("freeway").env
    game.random = RecordingRandom(4)
    game.reset()
    state = GAME.reset(car_draws(game.random.take()))
    assert_same_state(state, game, "after reset")
    np.testing.assert_array_equal(np.asarray(first.car_x), np.zeros(8))
    np.testing.assert_array_equal(np.asarray(first.car_timer), np.abs(np.asarray(first.car_v)))


def test_step_draws_matter_only_on_a_crossing():
    keys = jax.random.split(jax.random.key(2), 512)
    batch = jax.vmap(lambda k: GAME.reset(GAME.draw_reset(k)))(keys)
    rng = np.random.default_rng(0)
    batch = batch.replace(pos=jnp.asarray(rng.choice([1, 1, 1, 2, 5, 9], 512), jnp.int32),
                          move_timer=jnp.asarray(rng.integers(0, 2, 512), jnp.int32),
                          car_x=jnp.asarray(rng.integers(0, 10, (512, 8)), jnp.int32))
    actions = jnp.asarray(rng.choice([0, 2, 4], 512), jnp.int32)
    step = jax.jit(jax.vmap(lambda s, a, d: GAME.step(s, a, d, True)))
    draws = jax.jit(jax.vmap(GAME.draw_step))
    s1, r1, _ = step(batch, actions, draws(jax.random.split(jax.random.key(3), 512), batch))
    d2 = draws(jax.random.split(jax.random.key(4), 512), batch)
    s2, r2, _ = step(batch, actions, d2)
    crossed = np.asarray(r1) == 1
    assert 20 < crossed.sum() < 500
    np.testing.assert_array_equal(np.asarray(r1), np.asarray(r2))
    for f in FIELDS:
        a, b = np.asarray(getattr(s1, f)), np.asarray(getattr(s2, f))
        np.testing.assert_array_equal(a[~crossed], b[~crossed], err_msg=f)
    np.testing.assert_array_equal(np.asarray(s2.car_v)[crossed],
                                  np.asarray(d2.speeds * d2.directions)[crossed])


# properties ------------------------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), actions=st.lists(st.sampled_from([0, 2, 2, 4, 1]), min_size=1,
                                                    max_size=60))
def test_reachable_observations_are_one_hot_and_rewards_binary(seed, actions):
    key = jax.random.key(seed)
    s = GAME.reset(GAME.draw_reset(key))
    for i, a in enumerate(actions):
        s, r, t = _step()(s, jnp.int32(a), GAME.draw_step(jax.random.fold_in(key, i), s))
        obs = np.asarray(_observe()(s))
        assert obs.shape == (10, 10, 7) and obs.dtype == bool
        assert obs[..., 0].sum() == 1 and obs[:, 4, 0].any()  # the chicken, on column 4
        np.testing.assert_array_equal(obs[..., 1].sum(axis=1), [0] + [1] * 8 + [0])  # a car a lane
        np.testing.assert_array_equal(obs[..., 2:].sum(axis=(1, 2)), [0] + [1] * 8 + [0])  # a trail a lane
        assert float(r) in (0.0, 1.0) and not bool(t)
