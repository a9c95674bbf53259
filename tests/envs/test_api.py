import jax
import jax.numpy as jnp
import numpy as np
import pytest

import plastix.envs as E
from plastix.envs.api import Box, Discrete


def test_list_envs_has_minigrid_ids():
    ids = E.list_envs("MiniGrid-")
    for n in (5, 6, 8, 16):
        assert f"MiniGrid-Empty-{n}x{n}-v0" in ids
        assert f"MiniGrid-DoorKey-{n}x{n}-v0" in ids
    assert "MiniGrid-Empty-Random-5x5-v0" in ids and "MiniGrid-Empty-Random-6x6-v0" in ids


def test_unknown_env_lists_close_matches():
    with pytest.raises(E.UnknownEnvError, match="MiniGrid-DoorKey-5x5-v0"):
        E.make("MiniGrid-DoorKey-5x5-v1")
    with pytest.raises(E.UnknownEnvError, match="unknown env id"):
        E.make("CartPole-v1")


def test_bad_env_kwargs_fail_clearly():
    with pytest.raises(ValueError, match="observation"):
        E.make("MiniGrid-Empty-5x5-v0", observation="pixels")
    with pytest.raises(ValueError, match="view_size"):
        E.make("MiniGrid-Empty-5x5-v0", view_size=4)


def test_spaces_sample_and_contain():
    key = jax.random.PRNGKey(0)
    d = Discrete(7)
    assert d.contains(np.int32(d.sample(key))) and not d.contains(7)
    b = Box(0, 255, (7, 7, 3), jnp.uint8)
    x = b.sample(key)
    assert x.shape == (7, 7, 3) and x.dtype == jnp.uint8 and b.contains(x)


def test_spec_describes_env():
    env = E.make("MiniGrid-DoorKey-8x8-v0")
    spec = env.spec
    assert spec.env_id == "MiniGrid-DoorKey-8x8-v0"
    assert spec.observation_space.shape == (7, 7, 3)
    assert spec.action_space.n == 7 and spec.action_space.kind == "discrete"
    assert spec.max_steps == 640 and spec.on_device
