"""ALE and CALE on the host: CALE's joystick map against ale-py's own, sticky actions and life loss as
ale-py documents them, frames stored once in replay against the env's own stacks, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ale_py.env import AtariEnv as AleAtariEnv
from ale_py.vector_env import AtariVectorEnv

from plastix.envs import make
from plastix.envs.atari import ATARI_100K, AtariOptions, cale_controls, joystick, rom_ids
from plastix.envs.atari_scores import has_reference, human_normalized
from plastix.replay import Replay
from plastix.run.config import ConfigError, from_dict, validate


def test_joystick_table_is_ale_pys():
    for h in (-1, 0, 1):
        for v in (-1, 0, 1):
            for f in (0, 1):
                # a point on the axis direction (h, v), well beyond the threshold
                r, theta = (0.0, 0.0) if (h, v) == (0, 0) else (1.0, np.arctan2(v, h))
                assert joystick(np.array(r), np.array(theta), np.array(0.9 * f)) == \
                    AleAtariEnv.map_action_idx(h, v, bool(f)).value


def _frames(env, actions):
    env.reset(seed=np.array([3]))
    return np.stack([env.step(a)[0][0] for a in actions])


# (r, theta, fire): on each axis, off both, and exactly at the threshold (x = 0.5 is not beyond it)
POINTS = [(1.0, 0.0, 0.0), (1.0, np.pi, 0.0), (1.0, np.pi / 2, 0.0), (1.0, -np.pi / 2, 0.0),
          (1.0, np.pi / 4, 1.0), (0.3, 0.0, 0.0), (0.5, 0.0, 0.5), (0.51, 0.0, 0.51),
          (0.8, 3 * np.pi / 4, 0.6)]


def test_cale_moves_the_joystick_as_the_discrete_action_it_maps_to():
    """Each (r, theta, fire) held for 40 steps in CALE yields the frames of the full-action-set action
    `joystick` picks; the game (Berzerk: 8 directions and fire) shows distinct frames for distinct moves."""
    opts = dict(repeat_action_probability=0.0, noop_max=0, autoreset_mode="SameStep")
    cale = AtariVectorEnv("berzerk", 1, continuous=True, continuous_action_threshold=0.5, **opts)
    full = AtariVectorEnv("berzerk", 1, full_action_space=True, **opts)
    seen = {}
    for r, theta, fire in POINTS:
        cont = np.array([[r, theta, fire]], np.float32)
        frames = _frames(cale, [cont] * 40)
        index = int(joystick(np.array(r), np.array(theta), np.array(fire)))
        np.testing.assert_array_equal(frames, _frames(full, [np.array([index], np.int32)] * 40))
        seen.setdefault(index, frames)
    assert len(seen) >= 5
    distinct = {k: v.tobytes() for k, v in seen.items()}
    assert len(set(distinct.values())) == len(distinct)


def test_cale_controls_rescale_agent_actions():
    got = cale_controls(np.array([[-1.0, 0.0, 1.0], [1.0, -1.0, -1.0], [0.0, 0.5, 0.0]]))
    np.testing.assert_allclose(got, [[0.0, 0.0, 1.0], [1.0, -np.pi, 0.0], [0.5, np.pi / 2, 0.5]], rtol=1e-6)


def test_env_ids_spec_and_cale_threshold_through_the_wrapper():
    assert {"breakout", "pong", "ms_pacman"} <= set(rom_ids()) and set(ATARI_100K) <= set(rom_ids())
    spec = make("ALE/Breakout-v5").spec
    assert spec.observation_space.shape == (84, 84, 4) and spec.action_space.n == 4
    assert (spec.frame_stack, spec.frame_padding, spec.max_steps) == (4, "zero", 27_000)
    assert make("ALE/Breakout-v5", options=AtariOptions(full_actions=True)).spec.action_space.n == 18
    assert make("CALE/Breakout-v5").spec.action_space.shape == (3,)


def test_sticky_actions_repeat_the_previous_action():
    """ale-py: with probability p the emulator repeats the previous action instead of the new one; at
    p = 1 every action is the first (NOOP), at p = 0 the agent's own."""
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 18, 1).astype(np.int32) for _ in range(60)]
    noop = [np.zeros(1, np.int32)] * 60

    def run(p, acts):
        return _frames(AtariVectorEnv("berzerk", 1, repeat_action_probability=p, noop_max=0,
                                      full_action_space=True, autoreset_mode="SameStep"), acts)

    np.testing.assert_array_equal(run(1.0, actions), run(1.0, noop))
    assert not np.array_equal(run(0.0, actions), run(0.0, noop))
    assert make("ALE/Breakout-v5").vector(1).vec is not None  # the v5 default 0.25 builds


def test_episodic_life_terminates_on_life_loss_and_counts_whole_games():
    """With ``episodic_life`` each lost life is a termination while the game goes on (lives count down,
    no reset); ``episode_end`` marks game overs only. Rewards are clipped, scores are not."""
    envs = make("ALE/Breakout-v5", options=AtariOptions(sticky=0.0, episodic_life=True,
                                                         clip_rewards=True)).vector(2)
    envs.reset(np.array([1, 2]))
    rng = np.random.default_rng(0)
    terms, ends, lives = np.zeros(2, int), np.zeros(2, int), []
    while ends.min() < 2:
        obs, reward, term, trunc, info = envs.step(rng.integers(0, 4, 2))
        assert np.all(np.abs(reward) <= 1) and np.all(info["score"] >= reward)
        terms += term
        ends += info["episode_end"]
        lives.append(envs.lives.copy())
        assert not np.any(info["episode_end"] & ~term)
    assert np.all(terms >= 5 * ends) and np.all(terms <= 5 * ends + 4)  # 5 lives per game
    lives = np.array(lives)
    assert set(np.unique(lives)) <= {1, 2, 3, 4, 5} and (np.diff(lives, axis=0) < 0).sum() > 0


def test_frames_once_replay_sample_equals_the_envs_own_stacks():
    envs = make("ALE/Pong-v5", options=AtariOptions(sticky=0.0)).vector(2)
    spec = envs.spec
    replay = Replay(capacity=2 * 300, num_envs=2, frame_stack=spec.frame_stack, padding=spec.frame_padding)
    obs = envs.reset(np.array([5, 6]))
    state = replay.init(jnp.asarray(obs[0]), jnp.zeros((), jnp.int32))
    seen, rng = [], np.random.default_rng(1)
    for _ in range(280):
        action = rng.integers(0, spec.action_space.n, 2).astype(np.int32)
        next_obs, reward, term, trunc, info = envs.step(action)
        seen.append((obs, info["final_obs"], term | trunc))
        state = replay.add(state, *map(jnp.asarray, (obs, action, reward, term, trunc, info["final_obs"])))
        obs = next_obs
    batch, (rows, cols) = replay.sample(state, jax.random.PRNGKey(0), 256)
    for b, (row, col) in enumerate(zip(np.asarray(rows), np.asarray(cols), strict=True)):
        stored_obs, stored_next, done = seen[row]
        np.testing.assert_array_equal(np.asarray(batch["obs"][b]), stored_obs[col])
        if not done[col]:
            np.testing.assert_array_equal(np.asarray(batch["next_obs"][b]), stored_next[col])


def test_human_normalized_by_hand():
    # Breakout: random 1.7, human 30.5; Pong: random -20.7, human 14.6
    assert np.isclose(human_normalized(30.5, "ALE/Breakout-v5"), 1.0)
    assert np.isclose(human_normalized(16.1, "CALE/Breakout-v5"), (16.1 - 1.7) / (30.5 - 1.7))
    assert np.isclose(human_normalized(-3.05, "ALE/Pong-v5"), 0.5)
    assert has_reference("ALE/MsPacman-v5") and not has_reference("ALE/Adventure-v5")


@pytest.mark.parametrize(("data", "field", "words"), [
    ({"env": "ALE/Breakot-v5", "agent": "dqn"}, "env", "ALE/Breakout-v5"),
    ({"env": "CALE/Pongg-v5", "agent": "sac"}, "env", "CALE/Pong-v5"),
    ({"env": "ALE/Breakout-v5", "agent": "sac"}, "agent", "CALE/Breakout-v5"),
    ({"env": "CALE/Breakout-v5", "agent": "dqn"}, "agent", "ALE/Breakout-v5"),
    ({"env": "ALE/Breakout-v5", "agent": "dqn", "atari": {"sticky": 1.5}}, "atari.sticky", "[0, 1]"),
    ({"env": "ALE/Breakout-v5", "agent": "dqn", "atari": {"sticky": "high"}}, "atari.sticky", "float"),
    ({"env": "Hopper-v5", "agent": "sac", "atari": {"sticky": 0.0}}, "atari", "ALE/ and CALE/"),
])
def test_bad_atari_input_fails_before_compiling(data, field, words):
    with pytest.raises(ConfigError) as err:
        validate(from_dict({"total_steps": 50_000, **data}))
    assert str(err.value).startswith(field) and words in str(err.value)
