"""The MinAtar baselines run from their recipes: PPO with PureJaxRL's settings learns Breakout."""

import json

import numpy as np
from minatar import Environment

from plastix.cli import train_command


def _random_return(episodes: int = 500, cap: int = 1000) -> float:
    """The reference's uniformly random policy on Breakout (minimal actions, no sticky actions, cut at
    ``cap`` steps: the recipe's protocol)."""
    env, rng = Environment("breakout", sticky_action_prob=0.0), np.random.RandomState(1)
    env.seed(0)
    actions, total = env.minimal_action_set(), 0.0
    for _ in range(episodes):
        env.reset()
        for _ in range(cap):
            reward, done = env.act(actions[rng.randint(len(actions))])
            total += reward
            if done:
                break
    return total / episodes


def test_ppo_minatar_learns_breakout(tmp_path):
    args = ["--recipe", "ppo_minatar", "--env", "MinAtar/Breakout-v1", "--total-steps", "196608", "--seeds",
            "1", "--log-every", "65536", "--eval-every", "0", "--eval-episodes", "16", "--no-progress",
            "--out-dir", str(tmp_path), "--name", "ppo"]
    assert train_command(args) == 0


    ret = json.loads((tmp_path / "ppo" / "summary.json").read_text())["eval_return"][0]
    random = _random_return()  # ~0.4
    # 200k steps of PureJaxRL's PPO (which reaches ~28 after 10M) lift Breakout well clear of random
    assert ret > random + 2.0, (ret, random)
