"""Any plastix JAX env as a ``gymnasium.Env`` or a vmapped ``gymnasium.vector.VectorEnv``.

For users of other libraries: numpy in, numpy out. ``GymEnv`` leaves resets to the caller, as gymnasium
expects; an env that carries state across its resets (``next_episode``: MinAtar's last action) carries
it through ``reset()``, while ``reset(seed=...)`` starts afresh, so that a seed reproduces the episode.
``GymVectorEnv`` resets finished envs in the same step (``AutoresetMode.SAME_STEP``) and puts the
observation an episode ended on in ``info["final_obs"]``. ``info["success"]`` is passed on where the env
reports it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import jax
import numpy as np
from gymnasium.vector import AutoresetMode

from plastix.envs.api import Box, Discrete, make


def to_gym_space(space: Any) -> gym.Space:
    """A plastix space as the equivalent gymnasium space."""
    if isinstance(space, Discrete):
        return gym.spaces.Discrete(space.n)
    if isinstance(space, Box):
        return gym.spaces.Box(space.low, space.high, tuple(space.shape), np.dtype(space.dtype))
    raise TypeError(f"space: no gymnasium equivalent for {space!r}")


class GymEnv(gym.Env):
    """One plastix env behind the ``gymnasium.Env`` API."""

    metadata = {"render_modes": []}

    def __init__(self, env: Any | str, **kwargs: Any):
        self.env = make(env, **kwargs) if isinstance(env, str) else env
        self.observation_space = to_gym_space(self.env.observation_space)
        self.action_space = to_gym_space(self.env.action_space)
        self._reset = jax.jit(self.env.reset)
        carry = getattr(self.env, "next_episode", None)
        self._next_episode = jax.jit(carry) if carry is not None else None
        self._step = jax.jit(self.env.step_env)
        self._observe = jax.jit(self.env.observe)
        self._key = jax.random.PRNGKey(0)
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        elif self._state is None:
            self._key = jax.random.PRNGKey(int(self.np_random.integers(2**31)))
        self._key, k = jax.random.split(self._key)
        if seed is None and self._state is not None and self._next_episode is not None:
            self._state = self._next_episode(k, self._state)
            return np.asarray(self._observe(self._state)), {}
        obs, self._state = self._reset(k)
        return np.asarray(obs), {}

    def step(self, action: Any):
        if self._state is None:
            raise RuntimeError("step: call reset() before step()")
        self._key, k = jax.random.split(self._key)
        self._state, reward, term, trunc, info = self._step(k, self._state, action)
        obs = np.asarray(self._observe(self._state))
        info = {"success": bool(info["success"])} if "success" in info else {}
        return obs, float(reward), bool(term), bool(trunc), info


class GymVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of a plastix env stepped together with ``vmap`` (one jitted call)."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: Any | str, num_envs: int, **kwargs: Any):
        self.env = make(env, **kwargs) if isinstance(env, str) else env
        self.num_envs = num_envs
        self.single_observation_space = to_gym_space(self.env.observation_space)
        self.single_action_space = to_gym_space(self.env.action_space)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._reset = jax.jit(jax.vmap(self.env.reset))
        self._step = jax.jit(jax.vmap(self.env.step))
        self._key = jax.random.PRNGKey(0)
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.PRNGKey(seed)
        self._key, k = jax.random.split(self._key)
        obs, self._state = self._reset(jax.random.split(k, self.num_envs))
        return np.asarray(obs), {}

    def step(self, actions: Any):
        if self._state is None:
            raise RuntimeError("step: call reset() before step()")
        self._key, k = jax.random.split(self._key)
        obs, self._state, reward, term, trunc, info = self._step(
            jax.random.split(k, self.num_envs), self._state, np.asarray(actions)
        )
        info = {k: np.asarray(info[k]) for k in ("final_obs", "success") if k in info}
        return np.asarray(obs), np.asarray(reward), np.asarray(term), np.asarray(trunc), info
