"""The optimistic reset: exact transitions, distinct layouts while there are enough, clear refusals."""

import jax
import numpy as np
import pytest

import plastix.envs as E
from plastix.envs.optimistic_reset import OptimisticReset, ResetPoolError
from plastix.run.config import ConfigError, build_env, from_dict


def test_steps_match_exact_resets_except_the_first_states():
    """Envs that did not end step exactly as with exact resets (same keys); ended ones report the same
    transition and final observation, and start from the step's fresh layouts in order."""
    inner = E.make("MiniGrid-DoorKey-5x5-v0", max_steps=6)
    env, batch = OptimisticReset(inner, 4), 32
    exact = jax.jit(lambda k, s, a: jax.vmap(inner.step)(k, s, a))
    pooled = jax.jit(env.step_batch)
    fresh_layouts = jax.jit(lambda keys: jax.vmap(inner.reset_env)(jax.vmap(jax.random.split)(keys)[:, 1]))
    key = jax.random.PRNGKey(0)
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(key, batch))[1]
    # staggered clocks: a few episodes end on each step
    state = state.replace(step_count=jax.random.randint(key, (batch,), 0, 6))
    ended = 0
    for t in range(12):
        keys = jax.random.split(jax.random.fold_in(key, t), batch)
        action = jax.random.randint(jax.random.fold_in(key, 100 + t), (batch,), 0, 7)
        o1, s1, r1, te1, tr1, i1 = exact(keys, state, action)
        o2, s2, r2, te2, tr2, i2 = pooled(keys, state, action)
        for a, b in ((r1, r2), (te1, te2), (tr1, tr2), (i1["final_obs"], i2["final_obs"])):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        done = np.asarray(te2 | tr2)
        for a, b in zip(jax.tree.leaves((s1, o1)), jax.tree.leaves((s2, o2)), strict=True):
            np.testing.assert_array_equal(np.asarray(a)[~done], np.asarray(b)[~done])
        # the j-th ended env starts from layout j mod m, sampled with the reset key of env j mod m
        m = env.fresh_layouts(batch)
        fresh = fresh_layouts(keys[:m])
        slots = np.arange(done.sum()) % m
        for a, b in zip(jax.tree.leaves(s2), jax.tree.leaves(fresh), strict=True):
            np.testing.assert_array_equal(np.asarray(a)[done], np.asarray(b)[slots])
        ended += int(done.sum())
        state = s2
    assert ended >= 32


def test_batched_step_is_vmapped_step():
    """`Env.step_batch` (one observation call over both batches of states) equals ``vmap(step)``; asked
    for final observations only where truncated (or nowhere), the same but for the rows not asked."""
    env, batch = E.make("MiniGrid-DoorKey-5x5-v0", max_steps=3), 8
    exact, batched = jax.jit(jax.vmap(env.step)), jax.jit(env.step_batch)
    lean = jax.jit(env.step_batch, static_argnames="final_obs")
    state = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), batch))[1]
    truncations = []
    for t in range(4):  # every episode ends at the third step
        keys = jax.random.split(jax.random.PRNGKey(t), batch)
        action = jax.random.randint(jax.random.PRNGKey(10 + t), (batch,), 0, 7)
        one, two = exact(keys, state, action), batched(keys, state, action)
        for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        # PPO asks final observations only where truncated: exact there, the next observation elsewhere
        for ask in ("truncated", "none"):
            three = lean(keys, state, action, final_obs=ask)
            for a, b in zip(jax.tree.leaves(one[:5]), jax.tree.leaves(three[:5]), strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
            exact_rows = np.asarray(one[4]) if ask == "truncated" else np.zeros(batch, bool)
            final = np.asarray(three[5]["final_obs"])
            np.testing.assert_array_equal(final[exact_rows], np.asarray(one[5]["final_obs"])[exact_rows])
            np.testing.assert_array_equal(final[~exact_rows], np.asarray(one[0])[~exact_rows])
        truncations.append(int(np.asarray(one[4]).sum()))
        state = two[1]
    assert truncations[0] == 0 and truncations[2] > 0  # both sides of the "truncated" case ran
    with pytest.raises(ValueError, match="final_obs: 'some' is not one of done, truncated, none"):
        env.step_batch(keys, state, action, final_obs="some")


def test_refusals():
    with pytest.raises(ResetPoolError, match="reset_ratio: must be an integer >= 1, got 0"):
        OptimisticReset(E.make("MiniGrid-Empty-5x5-v0"), 0)
    mix = dict(env="TaskMix/MiniGrid-v0", reset_ratio=4,
               taskmix={"tasks": ["MiniGrid-Empty-5x5-v0", "MiniGrid-DoorKey-5x5-v0"]})
    with pytest.raises(ConfigError, match="reset_ratio: TaskMix/MiniGrid-v0 carries state across its resets"):
        build_env(from_dict(mix))
    with pytest.raises(ConfigError, match="reset_ratio: Hopper-v5 is stepped on the host"):
        build_env(from_dict(dict(env="Hopper-v5", agent="sac", reset_ratio=4)))
    env = build_env(from_dict(dict(env="MiniGrid-FourRooms-v0", reset_ratio=16)))
    assert isinstance(env, OptimisticReset) and env.fresh_layouts(2048) == 128
