"""`GridEnv`: one MiniGrid family = a layout generator + task rules + the shared dynamics/observations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from plastix.envs.api import Box, Discrete, Env, Space
from plastix.envs.grid.dynamics import NUM_ACTIONS, Transition, move
from plastix.envs.grid.observations import egocentric, full_grid, one_hot
from plastix.envs.grid.render import rgb_egocentric, rgb_full
from plastix.envs.grid.rewards import goal_or_lava, truncated
from plastix.envs.grid.state import GridState

Layout = Callable[[jax.Array], GridState]
Rules = Callable[[GridState, Transition, int, GridState], tuple[jax.Array, jax.Array, jax.Array]]
World = Callable[[jax.Array, GridState], GridState]
ONEHOT_CHANNELS = 20
OBSERVATIONS = ("egocentric", "full", "onehot", "full_onehot", "rgb", "rgb_full")


@dataclass(frozen=True, eq=False)
class GridEnv(Env):
    """A JAX MiniGrid environment (one env; vmap for batches).

    ``layout(key)`` samples the first state of an episode (MiniGrid's ``_gen_grid``); ``world``, if
    set, changes the world before the agent acts (moving obstacles); ``rules(next_state, transition,
    max_steps, state_before)`` decide ``(reward, terminated, success)``. ``action_map`` re-routes
    actions before they act (Memory: pickup acts as toggle; Dynamic-Obstacles: all but the first
    ``num_actions`` act as left).

    ``observation``: ``"egocentric"`` (MiniGrid's ``image``, ``uint8[V, V, 3]``), ``"full"``
    (``FullyObsWrapper``, ``uint8[W, H, 3]``), their one-hot forms ``"onehot"`` / ``"full_onehot"``
    (20 channels: object | colour | state), or RGB images ``"rgb"`` (``RGBImgPartialObsWrapper``) /
    ``"rgb_full"`` (``RGBImgObsWrapper``) with ``tile_size``-pixel tiles.
    """

    env_id: str
    width: int
    height: int
    layout: Layout
    max_episode_steps: int
    rules: Rules = goal_or_lava
    world: World | None = None
    num_actions: int = NUM_ACTIONS
    action_map: tuple[int, ...] | None = None
    see_through_walls: bool = False
    view_size: int = 7
    observation: str = "egocentric"
    tile_size: int = 8

    def __post_init__(self) -> None:
        if self.observation not in OBSERVATIONS:
            raise ValueError(
                f"observation: {self.observation!r} is not one of {', '.join(OBSERVATIONS)}"
            )
        if self.view_size < 3 or self.view_size % 2 == 0:
            raise ValueError(f"view_size: must be odd and >= 3, got {self.view_size}")
        if self.max_episode_steps <= 0:
            raise ValueError(f"max_steps: must be positive, got {self.max_episode_steps}")

    @property
    def max_steps(self) -> int:
        return self.max_episode_steps

    @property
    def observation_space(self) -> Space:
        v, t = self.view_size, self.tile_size
        shapes = {
            "egocentric": (v, v, 3),
            "full": (self.width, self.height, 3),
            "onehot": (v, v, ONEHOT_CHANNELS),
            "full_onehot": (self.width, self.height, ONEHOT_CHANNELS),
            "rgb": (v * t, v * t, 3),
            "rgb_full": (self.height * t, self.width * t, 3),
        }
        high = 1 if self.observation.endswith("onehot") else 255
        return Box(0, high, shapes[self.observation], jnp.uint8)

    @property
    def action_space(self) -> Space:
        return Discrete(self.num_actions)

    def reset_env(self, key: jax.Array, params: Any = None) -> GridState:
        return self.layout(key)

    def step_env(self, key: jax.Array, state: GridState, action: jax.Array, params: Any = None):
        action = jnp.asarray(action, jnp.int32)
        if self.action_map is not None:
            action = jnp.asarray(self.action_map, jnp.int32)[action]
        before = state
        if self.world is not None:
            state = self.world(key, state)
        next_state, tr = move(state, action)
        reward, terminated, success = self.rules(next_state, tr, self.max_episode_steps, before)
        trunc = truncated(next_state, self.max_episode_steps)
        return next_state, reward, terminated, trunc, {"success": success}

    def observe(self, state: GridState, params: Any = None) -> jax.Array:
        obs = self.observation
        if obs == "rgb":
            return rgb_egocentric(state, self.tile_size, self.view_size, self.see_through_walls)
        if obs == "rgb_full":
            return rgb_full(state, self.tile_size, self.view_size, self.see_through_walls)
        image = full_grid(state) if obs.startswith("full") else egocentric(
            state, self.view_size, self.see_through_walls)
        return one_hot(image) if obs.endswith("onehot") else image
