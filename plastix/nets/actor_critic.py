"""Actor-critic network with a shared torso or separate actor and critic torsos."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax

from plastix.nets.heads import CategoricalHead, ValueHead
from plastix.nets.torsos import MLP


class ActorCritic(nn.Module):
    """``obs features -> (logits, value)``; inputs are flat float features ``[..., D]``."""

    num_actions: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    shared_torso: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.shared_torso:
            z = MLP(self.hidden, self.activation, name="torso")(x)
            return CategoricalHead(self.num_actions, name="actor_head")(z), ValueHead(
                name="critic_head"
            )(z)
        actor = MLP(self.hidden, self.activation, name="actor_torso")(x)
        critic = MLP(self.hidden, self.activation, name="critic_torso")(x)
        return CategoricalHead(self.num_actions, name="actor_head")(actor), ValueHead(
            name="critic_head"
        )(critic)
