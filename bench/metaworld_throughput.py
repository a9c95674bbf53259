"""Meta-World MT10: the raw gymnasium vector env (sync and async, random actions) vs plastix's host env
around it vs multi-task SAC's agent steps/s, all in the same run.

Agent settings: the authors' base configuration (McLean et al. 2025, rainx0r/mtrl): actor and critics
3 x 400 ReLU layers, batch 1280 (128 of each task), one gradient step per step of the 10 tasks (UTD 1 in
the paper's count; ``utd`` 0.1 per env step here), per-task temperature, gradient clipping 1.0. Timing
starts after learning has started and the update is compiled, so every timed iteration updates. Every
env row reads the whole observation, reward, termination, truncation and success it returns.

    python bench/metaworld_throughput.py [--steps 200] [--env-steps 300]

``--steps`` / ``--env-steps`` count vector steps (10 env steps each).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import jax
import numpy as np

RESULTS = Path(__file__).parent / "results"
TASKS = 10
WARMUP = 200  # vector steps of random actions before learning


def raw_rate(vector_strategy: str, steps: int) -> dict:
    """``gymnasium.make_vec("Meta-World/MT10")`` stepped with random actions."""
    import gymnasium as gym
    import metaworld  # noqa: F401  (registers the ids)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        envs = gym.make_vec("Meta-World/MT10", vector_strategy=vector_strategy, seed=0, use_one_hot=True)
    envs.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, TASKS, 4))
    total = 0.0
    t = time.perf_counter()
    for a in actions:
        obs, reward, term, trunc, info = envs.step(a)
        total += obs.sum() + reward.sum() + term.sum() + trunc.sum() + np.sum(info["success"])
    seconds = time.perf_counter() - t
    envs.close()
    return {"seconds": seconds, "steps": steps * TASKS, "steps_per_s": steps * TASKS / seconds,
            "checksum": float(total)}


def plastix_env_rate(vector_strategy: str, steps: int) -> dict:
    """plastix's `MetaWorldVecEnv` (final observations, whole-episode success) around the same env."""
    from plastix.envs import make
    from plastix.envs.metaworld import MetaWorldOptions

    envs = make("Meta-World/MT10", options=MetaWorldOptions(vector=vector_strategy)).vector(TASKS)
    envs.reset(np.arange(TASKS))
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, TASKS, 4))
    total = 0.0
    t = time.perf_counter()
    for a in actions:
        obs, reward, term, trunc, info = envs.step(a)
        total += obs.sum() + reward.sum() + term.sum() + trunc.sum() + info["success"].sum() + \
            info["final_obs"].sum()
    seconds = time.perf_counter() - t
    envs.close()
    return {"seconds": seconds, "steps": steps * TASKS, "steps_per_s": steps * TASKS / seconds,
            "checksum": float(total)}


def mtsac(vector_strategy: str, steps: int) -> dict:
    """Multi-task SAC through the host loop (one seed), the recipe's networks and batch."""
    import dataclasses

    from plastix.run.config import load_recipe
    from plastix.run.host_loop import HostLoop
    from plastix.run.load import build

    config = load_recipe("mtsac_mt10")
    config = dataclasses.replace(
        config, total_steps=(WARMUP + 20 + steps) * TASKS, seeds=1,
        metaworld=dataclasses.replace(config.metaworld, vector=vector_strategy),
        sac=dataclasses.replace(config.sac, learning_starts=WARMUP * TASKS))
    env, agent = build(config)
    loop = HostLoop(env, agent, 1)
    runner = loop.init(jax.random.PRNGKey(0)[None])
    t = time.perf_counter()
    runner, _ = loop.chunk(WARMUP + 20, None)(runner, 0)  # random steps, then 20 compiled updates
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    runner, out = loop.chunk(steps, None)(runner, WARMUP + 20)  # metrics come back as host arrays
    seconds = time.perf_counter() - t
    loop.close()
    assert np.asarray(out.updated).all() and np.isfinite(out.values["loss/total"]).all()
    return {"compile_s": compile_s, "seconds": seconds, "steps": steps * TASKS,
            "steps_per_s": steps * TASKS / seconds, "updates": int(np.asarray(out.updated).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed agent iterations (vector steps)")
    parser.add_argument("--env-steps", type=int, default=300, help="timed raw vector steps")
    args = parser.parse_args()
    rows = {}
    for strategy in ("sync", "async"):
        rows[f"MT10 gymnasium vector env, {strategy}"] = raw_rate(strategy, args.env_steps)
        rows[f"MT10 plastix host env, {strategy}"] = plastix_env_rate(strategy, args.env_steps)
    best = max(("sync", "async"), key=lambda s: rows[f"MT10 gymnasium vector env, {s}"]["steps_per_s"])
    rows[f"MT-SAC (400 x 3, batch 1280), {best}"] = mtsac(best, args.steps)
    agent = rows[f"MT-SAC (400 x 3, batch 1280), {best}"]["steps_per_s"]
    raw = rows["MT10 gymnasium vector env, sync"]["steps_per_s"]
    print(f"Meta-World MT10, 10 envs (one per task) ({platform.machine()}, {jax.devices()[0].platform}, "
          f"{jax.device_count()} device(s))")
    print(f"{'':<40} {'env steps':>9} {'seconds':>8} {'steps/s':>9} {'/ raw sync env':>15}")
    for name, r in rows.items():
        print(f"{name:<40} {r['steps']:>9,} {r['seconds']:>8.1f} {r['steps_per_s']:>9,.1f} "
              f"{r['steps_per_s'] / raw:>14.1%}")
    ratios = {"agent_over_raw_sync_env": agent / raw,
              "async_over_sync_env": rows["MT10 gymnasium vector env, async"]["steps_per_s"] / raw}
    print(f"MT-SAC runs at {ratios['agent_over_raw_sync_env']:.1%} of the raw sync env rate (goal >= 50%); "
          f"async stepping is {ratios['async_over_sync_env']:.2f}x sync")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "metaworld_throughput.json"
    out.write_text(json.dumps({"rows": rows, "ratios": ratios, "agent_vector_strategy": best,
                               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
