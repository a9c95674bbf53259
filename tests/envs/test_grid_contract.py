"""The env contract on the JAX gridworlds: shapes, dtypes, auto-reset, truncation, reward, invariants."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import plastix.envs as E
from plastix.envs.grid import Action
from plastix.envs.grid.entities import DOOR, KEY, TYPE, WALL, can_overlap
from plastix.envs.grid.layouts.common import sample_cell


def test_batched_reset_and_step_shapes_and_dtypes():
    env = E.make("MiniGrid-DoorKey-6x6-v0")
    keys = jax.random.split(jax.random.PRNGKey(0), 8)
    obs, state = jax.vmap(env.reset)(keys)
    assert obs.shape == (8, 7, 7, 3) and obs.dtype == jnp.uint8
    assert state.grid.shape == (8, 6, 6, 5) and state.agent_pos.shape == (8, 2)
    actions = jnp.arange(8) % 7
    obs, state, reward, term, trunc, info = jax.jit(jax.vmap(env.step))(keys, state, actions)
    assert obs.shape == (8, 7, 7, 3) and obs.dtype == jnp.uint8
    assert reward.shape == (8,) and reward.dtype == jnp.float32
    assert term.dtype == jnp.bool_ and trunc.dtype == jnp.bool_
    assert info["final_obs"].shape == (8, 7, 7, 3) and info["success"].dtype == jnp.bool_


def test_reward_formula_and_auto_reset_on_goal():
    env = E.make("MiniGrid-Empty-5x5-v0")  # start (1, 1) facing right, goal (3, 3), max_steps 100
    obs, state = env.reset(jax.random.PRNGKey(0))
    step = jax.jit(env.step)
    plan = [Action.FORWARD, Action.FORWARD, Action.RIGHT, Action.FORWARD, Action.FORWARD]
    for i, a in enumerate(plan):
        obs, state, reward, term, trunc, info = step(jax.random.PRNGKey(i), state, a)
        if i < len(plan) - 1:
            assert not term and reward == 0.0
    assert bool(term) and not bool(trunc)
    np.testing.assert_allclose(float(reward), 1 - 0.9 * 5 / 100, rtol=1e-6)
    assert bool(info["success"])
    # auto-reset: a fresh episode at the fixed start, while final_obs still shows the goal reached
    assert int(state.step_count) == 0 and state.agent_pos.tolist() == [1, 1]
    assert not np.array_equal(np.asarray(obs), np.asarray(info["final_obs"]))


def test_truncation_at_max_steps_without_termination():
    env = E.make("MiniGrid-Empty-5x5-v0", max_steps=3)
    _, state = env.reset(jax.random.PRNGKey(0))
    outs = []
    for i in range(3):
        _, state, reward, term, trunc, _ = env.step(jax.random.PRNGKey(i), state, Action.LEFT)
        outs.append((bool(term), bool(trunc), float(reward)))
    assert outs == [(False, False, 0.0), (False, False, 0.0), (False, True, 0.0)]
    assert int(state.step_count) == 0  # reset after truncation


def test_done_action_changes_nothing_but_the_step_count():
    env = E.make("MiniGrid-DoorKey-5x5-v0")
    _, state = env.reset(jax.random.PRNGKey(3))
    nxt, reward, term, trunc, info = env.step_env(jax.random.PRNGKey(0), state, Action.DONE)
    assert not term and reward == 0.0
    assert np.array_equal(nxt.grid, state.grid) and np.array_equal(nxt.agent_pos, state.agent_pos)
    assert int(nxt.step_count) == 1


@functools.cache
def _rollout_fn(env_id):
    env = E.make(env_id)

    @jax.jit
    def rollout(key, actions):
        _, state = env.reset(key)

        def body(s, a):
            s2, *_ = env.step_env(key, s, a)
            return s2, s2

        return state, jax.lax.scan(body, state, actions)[1]

    return rollout


@settings(max_examples=25, deadline=None)
@given(
    env_id=st.sampled_from(["MiniGrid-DoorKey-5x5-v0", "MiniGrid-DoorKey-8x8-v0",
                            "MiniGrid-Empty-Random-6x6-v0"]),
    seed=st.integers(0, 2**31 - 1),
    actions=st.lists(st.sampled_from([0, 1, 2, 2, 2, 3, 4, 5]), min_size=1, max_size=120),
)
def test_invariants_under_random_actions(env_id, seed, actions):
    first, states = _rollout_fn(env_id)(jax.random.PRNGKey(seed), jnp.asarray(actions, jnp.int32))
    grid0 = np.asarray(first.grid)
    grids = np.asarray(states.grid)
    walls = grid0[..., TYPE] == WALL
    # walls never move, never appear
    assert ((grids[..., TYPE] == WALL) == walls).all()
    # the agent never stands on a cell it cannot overlap
    pos = np.asarray(states.agent_pos)
    under = grids[np.arange(len(actions)), pos[:, 0], pos[:, 1]]
    assert np.asarray(can_overlap(jnp.asarray(under))).all()
    # a carried object is never also on the grid: keys are conserved between grid and hand
    keys_on_grid = (grids[..., TYPE] == KEY).sum(axis=(1, 2))
    carried = np.asarray(states.carrying)[:, TYPE] == KEY
    assert (keys_on_grid + carried == (grid0[..., TYPE] == KEY).sum()).all()
    # doors stay where they were
    assert ((grids[..., TYPE] == DOOR) == (grid0[..., TYPE] == DOOR)).all()
    assert np.asarray(states.step_count).tolist() == list(range(1, len(actions) + 1))


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.0, 0.999999), st.sampled_from([(5, 5), (8, 6), (19, 19)]))
def test_sample_cell_is_the_kth_free_cell(seed, u, shape):
    """`sample_cell` picks the floor(u * free)-th free cell in x-major order (what a uniform choice over
    the free cells by one uniform means), for any mask, also a single free cell or none."""
    mask = np.random.default_rng(seed).random(shape) < np.random.default_rng(seed + 1).random()
    got = np.asarray(jax.jit(sample_cell)(jnp.float32(u), jnp.asarray(mask)))
    free = np.argwhere(mask)  # x-major order
    if len(free) == 0:
        assert got.tolist() == [0, 0]
        return
    k = int(np.floor(np.float32(u) * np.float32(len(free))))
    assert got.tolist() == free[k].tolist()
