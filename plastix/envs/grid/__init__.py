"""JAX re-implementation of Farama MiniGrid (the NAVIX idea), exact to MiniGrid's dynamics."""

from plastix.envs.grid.dynamics import Action
from plastix.envs.grid.env import GridEnv
from plastix.envs.grid.state import GridState

__all__ = ["Action", "GridEnv", "GridState"]
