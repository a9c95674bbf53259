import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from plastix.envs.gym_compat import GymEnv, GymVectorEnv


def test_gym_env_passes_check_env():
    env = GymEnv("MiniGrid-DoorKey-5x5-v0")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    obs2, _ = env.reset(seed=3)
    assert np.array_equal(obs, obs2)


def test_gym_env_episode_ends_like_minigrid():
    env = GymEnv("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)
    for a in (2, 2, 1, 2):
        _, r, term, trunc, _ = env.step(a)
        assert not term
    _, r, term, trunc, info = env.step(2)
    assert term and not trunc and abs(r - (1 - 0.9 * 5 / 100)) < 1e-6 and info["success"]


def test_vector_env_batches_and_autoresets_same_step():
    venv = GymVectorEnv("MiniGrid-Empty-5x5-v0", num_envs=3, max_steps=2)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 7, 7, 3) and venv.observation_space.contains(obs)
    assert isinstance(venv.single_action_space, gym.spaces.Discrete)
    venv.step(np.zeros(3, int))
    obs, reward, term, trunc, info = venv.step(np.zeros(3, int))
    assert trunc.all() and not term.any()
    assert info["final_obs"].shape == (3, 7, 7, 3)
    assert venv.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
