"""Optimistic reset (the Craftax idea): a batch of envs samples fewer first states than it has envs.

Exact auto-reset samples a whole new layout for every env on every step (``vmap`` runs both sides of the
``done`` branch), so on families with costly generators (KeyCorridor, FourRooms) the reset is most of a
step. With ``ratio`` r, each step samples ``ceil(N / r)`` layouts; the envs whose episode ended take
them in order (the i-th done env takes layout ``i mod ceil(N / r)``).

Every episode's first state is still drawn from the env's own layout distribution (the marginals are
exact); only when more than ``ceil(N / r)`` envs end in the same step do some of them start from the
same layout. Evaluation and single-env stepping (`step`) stay exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp

from plastix.envs.api import Env, EnvSpec, Space


class ResetPoolError(ValueError):
    """An env or ratio the optimistic reset cannot take."""


@dataclass(frozen=True, eq=False)
class OptimisticReset(Env):
    """``env`` whose batched step (`Env.step_batch`) samples ``ceil(N / ratio)`` first states per step."""

    env: Env
    ratio: int

    def __post_init__(self) -> None:
        if not isinstance(self.ratio, int) or self.ratio < 1:
            raise ResetPoolError(f"reset_ratio: must be an integer >= 1, got {self.ratio!r}")
        if type(self.env).step is not Env.step:
            raise ResetPoolError(f"reset_ratio: {self.env.env_id} carries state across its resets (its own "
                                 f"step), so it cannot start episodes from shared layouts; use reset_ratio 1")

    @property
    def env_id(self) -> str:  # type: ignore[override]
        return self.env.env_id

    @property
    def default_params(self) -> Any:
        return self.env.default_params

    @property
    def observation_space(self) -> Space:
        return self.env.observation_space

    @property
    def action_space(self) -> Space:
        return self.env.action_space

    @property
    def max_steps(self) -> int:
        return self.env.max_steps

    @property
    def spec(self) -> EnvSpec:
        return self.env.spec

    def reset_env(self, key: jax.Array, params: Any = None) -> Any:
        return self.env.reset_env(key, params)

    def step_env(self, key: jax.Array, state: Any, action: jax.Array, params: Any = None):
        return self.env.step_env(key, state, action, params)

    def observe(self, state: Any, params: Any = None) -> Any:
        return self.env.observe(state, params)

    def fresh_layouts(self, num_envs: int) -> int:
        """How many first states a step of ``num_envs`` envs samples."""
        return math.ceil(num_envs / self.ratio)

    def first_states(self, keys: jax.Array, done: jax.Array, params: Any) -> Any:
        """``ceil(N / ratio)`` fresh states, the i-th env that ended taking number ``i mod`` that."""
        m = self.fresh_layouts(len(keys))
        fresh = jax.vmap(self.env.reset_env, in_axes=(0, None))(keys[:m], params)
        # a prefix sum by doubling: XLA's CPU cumsum costs the square of the batch
        slot = (jax.lax.associative_scan(jnp.add, done.astype(jnp.int32)) - 1) % m
        return jax.tree.map(lambda f: f[slot], fresh)
