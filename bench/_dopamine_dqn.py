"""Dopamine's JAX DQN agent (`dopamine-rl` 4.1.2) on Breakout, timed; run by bench/atari_throughput.py in
.venv-dopamine. Same env as plastix (ale-py's vector env with one game: 84x84 grey, frameskip 4,
max-pool, sticky 0.25; Dopamine stacks the 4 frames itself), Dopamine's DQN defaults (Nature CNN -> 512,
Adam 6.25e-5, eps 1.5e-4, batch 32, an update every 4 agent steps) with the Huber loss; replay 100k as
plastix's row. Prints one JSON line."""

import argparse
import json
import sys
import time
import types

import numpy as np

sys.modules.setdefault("baselines", types.ModuleType("baselines"))  # atari_lib imports it; unused here
for name in ("baselines.common", "baselines.common.atari_wrappers"):
    sys.modules.setdefault(name, types.ModuleType(name))

import gin  # noqa: E402
from ale_py.vector_env import AtariVectorEnv  # noqa: E402
from dopamine.jax.agents.dqn.dqn_agent import JaxDQNAgent  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=500)
    args = parser.parse_args()
    gin.parse_config(["ReplayBuffer.batch_size = 32", "ReplayBuffer.max_capacity = 100000"])
    env = AtariVectorEnv("breakout", 1, stack_num=1, repeat_action_probability=0.25,
                         autoreset_mode="SameStep")
    agent = JaxDQNAgent(num_actions=4, min_replay_history=args.warmup, loss_type="huber", seed=0,
                        summary_writer=None)
    obs, _ = env.reset(seed=0)
    action = agent.begin_episode(obs[0, 0])
    total = 0.0

    def run(n):
        nonlocal action, total
        for _ in range(n):
            obs, reward, term, trunc, info = env.step(np.array([action], np.int32))
            total += float(obs.sum()) + reward.sum() + term.sum() + trunc.sum()
            if term[0] or trunc[0]:
                agent.end_episode(float(reward[0]), bool(term[0]))
                action = agent.begin_episode(obs[0, 0])  # SameStep: obs is the next episode's first
            else:
                action = agent.step(float(reward[0]), obs[0, 0])

    t = time.perf_counter()
    run(args.warmup + 100)  # random steps, then compiled updates
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    run(args.steps)
    seconds = time.perf_counter() - t
    print(json.dumps({"compile_s": compile_s, "seconds": seconds, "steps": args.steps,
                      "steps_per_s": args.steps / seconds, "training_steps": int(agent.training_steps),
                      "checksum": total}))


if __name__ == "__main__":
    main()
