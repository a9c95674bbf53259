"""The state of one JAX gridworld: a dense encoded grid plus the agent, as a pytree.

The grid is indexed ``grid[x, y]`` (column, row), MiniGrid's own convention, so ``grid[..., :3]`` is
``minigrid.Grid.encode()`` and states import from minigrid without transposes. Every family fits this
state: doors, keys, balls, boxes (with content), lava, floors and goals are cell values; moving
obstacles are balls on the grid; task targets and missions are integers in ``mission``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from plastix.envs.grid.entities import EMPTY_CELL

MISSION_LEN = 6  # integer-encoded mission fields: (kind, obj, colour, obj2, colour2, extra); see missions


@struct.dataclass
class GridState:
    """Pure state of one env; batch it with ``vmap``."""

    grid: jax.Array  # uint8[W, H, 5]
    agent_pos: jax.Array  # int32[2], (x, y)
    agent_dir: jax.Array  # int32[], 0 right, 1 down, 2 left, 3 up
    carrying: jax.Array  # uint8[5], EMPTY_CELL when empty-handed
    step_count: jax.Array  # int32[]
    mission: jax.Array  # int32[MISSION_LEN]
    target: jax.Array  # int32[4], family-specific target (e.g. a position), -1 when unused
    objects: jax.Array  # int32[N, 2], positions of objects a family tracks in order (moving obstacles)

    @property
    def width(self) -> int:
        return self.grid.shape[-3]

    @property
    def height(self) -> int:
        return self.grid.shape[-2]


def new_state(grid: jax.Array, agent_pos: jax.Array, agent_dir: jax.Array,
              mission: jax.Array | None = None, target: jax.Array | None = None,
              objects: jax.Array | None = None) -> GridState:
    """A fresh episode state (empty-handed, step 0)."""
    return GridState(
        grid=grid.astype(jnp.uint8),
        agent_pos=jnp.asarray(agent_pos, jnp.int32),
        agent_dir=jnp.asarray(agent_dir, jnp.int32),
        carrying=jnp.asarray(EMPTY_CELL),
        step_count=jnp.zeros((), jnp.int32),
        mission=jnp.zeros(MISSION_LEN, jnp.int32) if mission is None else jnp.asarray(mission, jnp.int32),
        target=jnp.full(4, -1, jnp.int32) if target is None else jnp.asarray(target, jnp.int32),
        # one unused (-1) row when nothing is tracked: zero-size arrays cannot be checkpointed
        objects=jnp.full((1, 2), -1, jnp.int32) if objects is None else jnp.asarray(objects, jnp.int32),
    )
