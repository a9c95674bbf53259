"""Device replay against values computed by hand: n-step windows, prioritised sampling frequencies,
importance weights, frames stored once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from plastix.replay import Replay, check, stratified_draw


def _fill(replay, steps, obs_fn, term=(), trunc=(), num_envs=1):
    state = replay.init(obs_fn(0), jnp.zeros((), jnp.int32))
    for t in range(steps):
        obs = jnp.stack([obs_fn(t)] * num_envs)
        state = replay.add(state, obs, jnp.full(num_envs, t % 3, jnp.int32), jnp.full(num_envs, float(t + 1)),
                           jnp.full(num_envs, t in term), jnp.full(num_envs, t in trunc),
                           jnp.stack([obs_fn(t + 1000)] * num_envs))
    return state


def _window(replay, state, row):
    batch = replay._window(state, jnp.array([row]), jnp.array([0]))
    return {k: np.asarray(v)[0] for k, v in batch.items()}


def test_n_step_return_cut_at_termination_and_bootstrapped_at_truncation():
    g = 0.9
    replay = Replay(capacity=32, num_envs=1, n_step=3, gamma=g)
    # rewards are t + 1; step 4 terminates, step 8 is truncated
    state = _fill(replay, 12, lambda t: jnp.full((2,), t, jnp.float32), term=(4,), trunc=(8,))
    w = _window(replay, state, 0)  # steps 0, 1, 2: no episode end
    assert w["return"] == pytest.approx(1 + g * 2 + g**2 * 3)
    assert w["discount"] == pytest.approx(g**3)
    np.testing.assert_array_equal(w["next_obs"], [1002, 1002])  # the observation step 2 ended on
    w = _window(replay, state, 3)  # steps 3, 4 (terminates): cut, no bootstrap
    assert w["return"] == pytest.approx(4 + g * 5)
    assert w["discount"] == 0.0
    w = _window(replay, state, 7)  # steps 7, 8 (truncated): bootstrap from step 8's final observation
    assert w["return"] == pytest.approx(8 + g * 9)
    assert w["discount"] == pytest.approx(g**2)
    np.testing.assert_array_equal(w["next_obs"], [1008, 1008])
    assert w["action"] == 7 % 3
    np.testing.assert_array_equal(w["obs"], [7, 7])


def test_uniform_sampling_reads_only_complete_windows_after_wraparound():
    replay = Replay(capacity=10, num_envs=2, n_step=2, gamma=0.5)  # 5 rows
    state = _fill(replay, 13, lambda t: jnp.full((1,), t, jnp.float32), num_envs=2)
    batch, (rows, envs) = replay.sample(state, jax.random.PRNGKey(0), 4000)
    starts = np.asarray(batch["obs"])[:, 0]
    # rows hold steps 8..12; a 2-step window needs its second step written: starts 8..11, uniformly
    assert set(np.unique(starts)) == {8, 9, 10, 11}
    _, p = stats.chisquare(np.bincount(starts.astype(int) - 8))
    assert p > 1e-3
    np.testing.assert_allclose(np.asarray(batch["return"]), starts + 1 + 0.5 * (starts + 2))
    assert set(np.unique(np.asarray(envs))) == {0, 1}


def test_prioritised_frequencies_follow_priorities_and_weights_by_hand():
    alpha, beta = 0.5, 0.4
    replay = Replay(capacity=8, num_envs=1, n_step=1, prioritized=True, alpha=alpha)
    state = _fill(replay, 8, lambda t: jnp.full((1,), t, jnp.float32))
    prio = jnp.array([1.0, 4.0, 9.0, 16.0, 0.25, 1.0, 2.25, 36.0])
    state = replay.update_priorities(state, (jnp.arange(8), jnp.zeros(8, jnp.int32)), prio)
    assert float(state.max_priority) == 36.0
    draws = jax.jit(lambda k: replay.sample(state, k, 64, beta)[0]["obs"][:, 0])
    obs = np.concatenate([np.asarray(draws(jax.random.PRNGKey(i))) for i in range(200)]).astype(int)
    expected = np.asarray(prio, np.float64) ** alpha / (np.asarray(prio, np.float64) ** alpha).sum()
    _, p = stats.chisquare(np.bincount(obs, minlength=8), expected * len(obs))
    assert p > 1e-3
    batch, (rows, _) = replay.sample(state, jax.random.PRNGKey(1), 16, beta)
    probs = expected[np.asarray(rows)]
    w = (8 * probs) ** -beta
    np.testing.assert_allclose(np.asarray(batch["weight"]), w / w.max(), rtol=1e-5)
    # a new step enters at the largest priority seen
    state = replay.add(state, jnp.zeros((1, 1)), jnp.zeros(1, jnp.int32), jnp.zeros(1), jnp.zeros(1, bool),
                       jnp.zeros(1, bool), jnp.zeros((1, 1)))
    assert float(state.priority[0, 0]) == 36.0


def _partly_written(alpha):
    """A prioritised buffer of 64 rows x 2 envs with 20 rows written (the rest have no window)."""
    replay = Replay(capacity=128, num_envs=2, n_step=3, prioritized=True, alpha=alpha)
    return replay, _fill(replay, 20, lambda t: jnp.full((1,), t, jnp.float32), num_envs=2)


def test_top_stratum_rounding_never_draws_a_zero_probability_row():
    # in float32 (31 + u) / 32 * total rounds up to total for u just below 1, past every row of mass
    u_top = np.nextafter(np.float32(1), np.float32(0))
    probs = jnp.array([0.3, 0.7, 0.1, 0.0, 0.0], jnp.float32)
    flat = np.asarray(stratified_draw(probs, jnp.full(32, u_top)))
    assert flat.max() == 2 and (np.asarray(probs)[flat] > 0).all()
    # mass only in the middle: draws below it move up onto the first positive row
    flat = np.asarray(stratified_draw(jnp.array([0.0, 0.0, 2.0, 0.0]), jnp.array([0.0, 0.5, u_top])))
    np.testing.assert_array_equal(flat, [2, 2, 2])
    replay, state = _partly_written(0.5)
    valid = np.asarray(replay._valid_rows(state)[0])
    for u in (u_top, 0.0):
        uniform = lambda *a, u=u, **k: jnp.full(a[1], u, jnp.float32)  # noqa: E731
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(jax.random, "uniform", uniform)
            batch, (rows, _) = replay.sample(state, jax.random.PRNGKey(397344), 32, 0.4)
        assert valid[np.asarray(rows)].all()
        assert np.isfinite(np.asarray(batch["weight"])).all()


@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_prioritised_sampling_draws_only_stored_windows_and_finite_weights(alpha):
    replay, state = _partly_written(alpha)
    valid = np.asarray(replay._valid_rows(state)[0])
    sample = jax.jit(lambda k: replay.sample(state, k, 32, 0.4))
    for i in range(50):
        batch, (rows, _) = sample(jax.random.PRNGKey(i))
        assert valid[np.asarray(rows)].all(), "a row without a stored window was drawn"
        assert np.isfinite(np.asarray(batch["weight"])).all()
    if alpha == 0.0:  # every stored window equally likely: weights all 1
        np.testing.assert_allclose(np.asarray(batch["weight"]), 1.0)


def _frame_stack_run(k, padding, steps=60, num_envs=3, seed=0):
    """A frame-stacking env of random-length episodes: frame t of env e is the constant t * 10 + e;
    the stack at a reset is padded like the replay's ``padding``."""
    rng = np.random.default_rng(seed)
    frame = lambda t, e: np.full((2, 2), t * 10 + e, np.float32)  # noqa: E731
    stacks = [[frame(0, e)] * k if padding == "repeat" else [np.zeros((2, 2))] * (k - 1) + [frame(0, e)]
              for e in range(num_envs)]
    obs, term, trunc, next_obs = [], [], [], []
    for t in range(steps):
        ends = rng.random(num_envs) < 0.2
        cut = rng.random(num_envs) < 0.5
        obs.append(np.stack([np.stack(s, -1) for s in stacks]))
        nxt, new = [], []
        for e in range(num_envs):
            after = stacks[e][1:] + [frame(t + 1, e)]
            nxt.append(np.stack(after, -1))
            if ends[e]:  # the next frame starts a new episode
                after = ([frame(t + 1, e)] * k if padding == "repeat"
                         else [np.zeros((2, 2))] * (k - 1) + [frame(t + 1, e)])
            new.append(after)
        next_obs.append(np.stack(nxt))
        term.append(ends & ~cut)
        trunc.append(ends & cut)
        stacks = new
    return [np.asarray(x) for x in (obs, term, trunc, next_obs)]


@pytest.mark.parametrize("padding", ["repeat", "zero"])
def test_frames_stored_once_rebuild_the_env_stacks(padding):
    k, n = 4, 3
    obs, term, trunc, next_obs = _frame_stack_run(k, padding, num_envs=n)
    replay = Replay(capacity=200 * n, num_envs=n, n_step=1, frame_stack=k, padding=padding)
    state = replay.init(jnp.asarray(obs[0, 0]), jnp.zeros((), jnp.int32))
    for t in range(len(obs)):
        state = replay.add(state, jnp.asarray(obs[t]), jnp.zeros(n, jnp.int32), jnp.zeros(n),
                           jnp.asarray(term[t]), jnp.asarray(trunc[t]), jnp.asarray(next_obs[t]))
    assert state.data["frame"].shape == (200, n, 2, 2)  # one frame per step
    for e in range(n):
        # every step after the first k - 1 (whose history would precede the buffer)
        rows = jnp.arange(k - 1, len(obs) - 1)
        got = np.asarray(replay.stack(state, rows, jnp.full(len(rows), e)))
        np.testing.assert_array_equal(got, obs[k - 1:-1, e])
        # the bootstrap stack of a step that did not end its episode is the env's next observation
        w = replay._window(state, rows, jnp.full(len(rows), e))
        alive = ~(term[k - 1:-1, e] | trunc[k - 1:-1, e])
        np.testing.assert_array_equal(np.asarray(w["next_obs"])[alive], next_obs[k - 1:-1, e][alive])
        assert (np.asarray(w["discount"])[~alive] == 0).all()


def test_check_names_the_field():
    with pytest.raises(ValueError, match="n_step: must be >= 1"):
        check(Replay(100, 1, n_step=0), "dqn.")
    with pytest.raises(ValueError, match="buffer_size: 4 holds 4 steps"):
        check(Replay(4, 1, n_step=5), "dqn.")
