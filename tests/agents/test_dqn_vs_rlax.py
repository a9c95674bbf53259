"""plastix's own TD building blocks against DeepMind's rlax (installed with the bench extra; skipped
without it): n-step returns from replay, the C51 projection, double-Q targets, the Huber loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.agents.dqn import categorical_projection, huber, q_target
from plastix.replay import Replay

rlax = pytest.importorskip("rlax")


def test_n_step_returns_match_rlax():
    gamma, n, steps = 0.9, 4, 40
    rng = np.random.default_rng(0)
    reward = rng.normal(size=steps).astype(np.float32)
    term = rng.random(steps) < 0.15
    value = rng.normal(size=steps).astype(np.float32)  # V of the state each step ends in
    replay = Replay(capacity=64, num_envs=1, n_step=n, gamma=gamma)
    state = replay.init(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    for t in range(steps):
        state = replay.add(state, jnp.array([t]), jnp.array([0]), jnp.array([reward[t]]),
                           jnp.array([term[t]]), jnp.array([False]), jnp.array([t]))
    rows = jnp.arange(steps - n + 1)
    w = replay._window(state, rows, jnp.zeros_like(rows))
    ours = np.asarray(w["return"]) + np.asarray(w["discount"]) * value[np.asarray(w["next_obs"])]
    discount = jnp.asarray(gamma * (1 - term), jnp.float32)
    theirs = rlax.n_step_bootstrapped_returns(jnp.asarray(reward), discount, jnp.asarray(value), n)
    np.testing.assert_allclose(ours, np.asarray(theirs)[: steps - n + 1], rtol=1e-5, atol=1e-5)


def test_categorical_projection_matches_rlax():
    support = jnp.linspace(-2.0, 2.0, 11)
    key1, key2 = jax.random.split(jax.random.PRNGKey(0))
    probs = jax.nn.softmax(jax.random.normal(key1, (8, 11)), -1)
    shifted = jax.random.uniform(key2, (8, 1), minval=-1, maxval=1) + 0.9 * support
    theirs = jax.vmap(rlax.categorical_l2_project, (0, 0, None))(shifted, probs, support)
    np.testing.assert_allclose(categorical_projection(support, probs, shifted), theirs, atol=1e-6)


def test_double_q_target_and_huber_match_rlax():
    key = jax.random.PRNGKey(1)
    q_tm1, q_t, q_sel = (jax.random.normal(k, (6, 4)) for k in jax.random.split(key, 3))
    a = jnp.array([0, 1, 2, 3, 0, 1])
    r, d = jnp.linspace(-1, 1, 6), jnp.array([0.9, 0.0, 0.9, 0.9, 0.5, 0.9])
    td = jax.vmap(rlax.double_q_learning)(q_tm1, a, r, d, q_t, q_sel)
    np.testing.assert_allclose(q_target(r, d, q_t, q_sel) - q_tm1[jnp.arange(6), a], td, atol=1e-6)
    x = jnp.linspace(-3, 3, 13)
    np.testing.assert_allclose(huber(x), rlax.huber_loss(x, 1.0), atol=1e-6)
