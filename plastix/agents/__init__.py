"""Agents, one file per algorithm; `AGENTS` maps the names configs use (``agent:``) to their classes.
Each class follows `plastix.agents.api.Agent` and brings its config section (``--<name>.*``)."""

from plastix.agents.dqn import DQN, DQNConfig
from plastix.agents.ppo import PPO, PPOConfig
from plastix.agents.sac import SAC, SACConfig

AGENTS = {"ppo": PPO, "dqn": DQN, "sac": SAC}

__all__ = ["AGENTS", "DQN", "DQNConfig", "PPO", "PPOConfig", "SAC", "SACConfig"]
