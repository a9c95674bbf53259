"""The batch the on-device loop hands to an agent's ``update``."""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class Rollout:
    """``[T, N]`` transitions from the loop plus the observation after the last step."""

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    log_prob: jax.Array
    value: jax.Array
    last_obs: jax.Array
