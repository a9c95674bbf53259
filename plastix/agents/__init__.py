"""Agents, one file per algorithm; `AGENTS` maps the names configs use to their classes."""

from plastix.agents.ppo import PPO, PPOConfig

AGENTS = {"ppo": PPO}

__all__ = ["AGENTS", "PPO", "PPOConfig"]
