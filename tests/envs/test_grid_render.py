"""RGB and one-hot observations, and `plastix envs render`."""

import subprocess
import sys

import gymnasium as gym
import jax
import minigrid  # noqa: F401
import numpy as np
import pytest
from minigrid.wrappers import OneHotPartialObsWrapper, RGBImgObsWrapper, RGBImgPartialObsWrapper

import plastix.envs as E
from plastix.envs.grid.convert import from_minigrid

IDS = ["MiniGrid-DoorKey-8x8-v0", "MiniGrid-LavaGapS7-v0", "MiniGrid-Empty-8x8-v0",
       "MiniGrid-Dynamic-Obstacles-8x8-v0", "MiniGrid-RedBlueDoors-6x6-v0"]


@pytest.mark.parametrize("env_id", IDS)
@pytest.mark.parametrize("mode, wrapper", [("rgb_full", RGBImgObsWrapper),
                                           ("rgb", RGBImgPartialObsWrapper)])
def test_rgb_is_pixel_exact_to_minigrid(env_id, mode, wrapper):
    ref = wrapper(gym.make(env_id))
    env = E.make(env_id, observation=mode)
    observe = jax.jit(env.observe)
    rng = np.random.default_rng(0)
    for ep in range(2):
        obs, _ = ref.reset(seed=ep)
        for _ in range(25):
            ours = np.asarray(observe(from_minigrid(ref)))
            assert ours.shape == env.observation_space.shape == obs["image"].shape
            assert np.array_equal(ours, obs["image"])
            obs, _, term, trunc, _ = ref.step(int(rng.choice([0, 1, 2, 2, 3, 5])))
            if term or trunc:
                break


def test_rgb_batches_under_vmap():
    env = E.make("MiniGrid-DoorKey-5x5-v0", observation="rgb", tile_size=4)
    obs, _ = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 3))
    assert obs.shape == (3, 28, 28, 3) and obs.dtype == np.uint8


def test_onehot_matches_minigrid_encoding():
    ref = gym.make("MiniGrid-DoorKey-8x8-v0")
    ref.reset(seed=1)
    state = from_minigrid(ref)
    image = np.asarray(E.make("MiniGrid-DoorKey-8x8-v0").observe(state))
    onehot = np.asarray(E.make("MiniGrid-DoorKey-8x8-v0", observation="onehot").observe(state))
    assert onehot.shape == (7, 7, 20) and set(np.unique(onehot)) <= {0, 1}
    assert (onehot.sum(-1) == 3).all()
    np.testing.assert_array_equal(onehot[..., :11].argmax(-1), image[..., 0])
    np.testing.assert_array_equal(onehot[..., 11:17].argmax(-1), image[..., 1])
    np.testing.assert_array_equal(onehot[..., 17:].argmax(-1), image[..., 2])
    # minigrid's own one-hot wrapper uses the same three blocks (object | colour | state)
    ref_oh = OneHotPartialObsWrapper(gym.make("MiniGrid-DoorKey-8x8-v0"))
    obs, _ = ref_oh.reset(seed=1)
    np.testing.assert_array_equal(onehot, obs["image"])


@pytest.mark.slow
def test_render_cli_writes_png_and_gif(tmp_path):
    from PIL import Image

    png, gif = tmp_path / "frame.png", tmp_path / "episode.gif"
    for args in ([str(png)], [str(gif), "--steps", "5", "--view", "agent"]):
        out = subprocess.run([sys.executable, "-m", "plastix.cli", "envs", "render",
                              "MiniGrid-DoorKey-5x5-v0", "--out", *args, "--tile-size", "8"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    assert Image.open(png).size == (40, 40)
    frames = Image.open(gif)
    assert frames.size == (56, 56) and frames.n_frames >= 2
    bad = subprocess.run([sys.executable, "-m", "plastix.cli", "envs", "render",
                          "MiniGrid-DoorKey-5x5-v0", "--out", str(tmp_path / "x.jpg")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "out:" in bad.stderr
