"""Random-action throughput of the JAX gridworlds: plastix vs NAVIX vs Farama minigrid, same run.

Each JAX implementation runs a batched step (``vmap(step)``; plastix's optimistic reset: its
``step_batch``) inside ``lax.scan`` under one ``jit`` (auto-reset on), with MiniGrid's egocentric
7x7x3 view (NAVIX: ``navix.observations.symbolic_first_person``), and every observation, reward and
done is read; compile time is measured apart from steps/s. minigrid steps one Python env with random
actions. One id per family that NAVIX also has. ``plastix pool`` is plastix with ``reset_ratio`` 16
(``ceil(batch / 16)`` fresh layouts per step); ``reused`` is the share of its episode starts that
shared a layout with another env ending in the same step.

    python bench/grid_throughput.py [--batches 1 16 256 2048] [--envs Empty-8x8 DoorKey-8x8 ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(__file__).parent / "results"
ENVS = ["Empty-8x8", "DoorKey-8x8", "FourRooms", "KeyCorridorS3R3", "LavaGapS7",
        "Dynamic-Obstacles-8x8", "DistShift1", "GoToDoor-8x8", "SimpleCrossingS9N1"]
RESET_RATIO = 16
ENV_IDS = {name: (f"MiniGrid-{name}-v0", f"Navix-{name}-v0") for name in ENVS}
STEPS = {1: 20_000, 16: 8_000, 256: 2_000, 2048: 500}


def measure(reset, step_batch, num_actions: int, batch: int, horizon: int,
             fresh: int | None = None) -> tuple[float, float, float | None]:
    """(compile seconds, steps per second, share of reused starts) of ``horizon`` batched random-action
    steps; ``fresh``: layouts an optimistic reset samples per step (None: every env its own)."""

    def run(key):
        state = jax.vmap(reset)(jax.random.split(key, batch))

        def body(state, k):
            k_act, k_env = jax.random.split(k)
            actions = jax.random.randint(k_act, (batch,), 0, num_actions)
            state, obs, reward, done = step_batch(jax.random.split(k_env, batch), state, actions)
            # the whole observation, reward and done are read, so XLA computes all of them
            ends = done.sum()
            reused = jnp.maximum(ends - (fresh or batch), 0)
            return state, (reward.sum() + obs.astype(jnp.float32).sum() + ends, ends, reused)

        total, ends, reused = jax.lax.scan(body, state, jax.random.split(key, horizon))[1]
        return total.sum(), ends.sum(), reused.sum()

    t = time.perf_counter()
    compiled = jax.jit(run).lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
    best = float("inf")
    for i in range(2):
        t = time.perf_counter()
        _, ends, reused = jax.block_until_ready(compiled(jax.random.PRNGKey(2 + i)))
        best = min(best, time.perf_counter() - t)
    return compile_s, batch * horizon / best, (float(reused / max(int(ends), 1)) if fresh else None)


def plastix_fns(env_id: str, reset_ratio: int = 1):
    import plastix.envs as E
    from plastix.envs.optimistic_reset import OptimisticReset

    if env_id not in E.list_envs():
        return None
    env = E.make(env_id)
    if reset_ratio > 1:
        env = OptimisticReset(env, reset_ratio)

    def reset(key):
        return env.reset(key)[1]

    def step_batch(keys, state, actions):
        obs, state, reward, terminated, truncated, _ = env.step_batch(keys, state, actions)
        return state, obs, reward, terminated | truncated

    return reset, step_batch, env.action_space.n


def navix_fns(env_id: str):
    import navix as nx

    if env_id not in nx.registry():
        return None
    env = nx.make(env_id, observation_fn=nx.observations.symbolic_first_person)

    def step(key, timestep, action):
        timestep = env.step(timestep, action)
        return timestep, timestep.observation, timestep.reward, timestep.is_done()

    return env.reset, jax.vmap(step), len(env.action_set)


def minigrid_steps_per_s(env_id: str, steps: int = 3000) -> float:
    import gymnasium as gym
    import minigrid  # noqa: F401

    env = gym.make(env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n = env.action_space.n
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(int(rng.integers(n)))
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16, 256, 2048])
    parser.add_argument("--envs", nargs="+", default=ENVS)
    args = parser.parse_args()
    rows = []
    for name in args.envs:
        mg_id, nx_id = ENV_IDS.get(name, (f"MiniGrid-{name}-v0", f"Navix-{name}-v0"))
        mg = minigrid_steps_per_s(mg_id)
        for batch in args.batches:
            row = {"env": name, "batch": batch, "minigrid_steps_per_s": mg}
            impls = (("plastix", plastix_fns(mg_id), None), ("pool", plastix_fns(mg_id, RESET_RATIO),
                     -(-batch // RESET_RATIO)), ("navix", navix_fns(nx_id), None))
            for impl, fns, fresh in impls:
                if fns is None:
                    row[f"{impl}_steps_per_s"] = row[f"{impl}_compile_s"] = None
                    continue
                reset, step_batch, n_actions = fns
                compile_s, sps, reused = measure(reset, step_batch, n_actions, batch, STEPS.get(batch, 500),
                                                  fresh)
                row[f"{impl}_steps_per_s"], row[f"{impl}_compile_s"] = sps, compile_s
                if fresh:
                    row["pool_reused_starts"] = reused
            p, q, n = row["plastix_steps_per_s"], row["pool_steps_per_s"], row["navix_steps_per_s"]
            row["speedup_vs_navix"] = p / n if p and n else None
            row["pool_speedup_vs_navix"] = q / n if q and n else None
            rows.append(row)
            fmt = lambda v, f: "-" if v is None else format(v, f)
            print(f"{name:<22} b={batch:<5} plastix {fmt(p, ',.0f'):>11}/s "
                  f"({fmt(row['plastix_compile_s'], '.1f')}s)  pool {fmt(q, ',.0f'):>11}/s  "
                  f"navix {fmt(n, ',.0f'):>10}/s ({fmt(row['navix_compile_s'], '.1f')}s)  "
                  f"minigrid {mg:,.0f}/s  x{fmt(row['speedup_vs_navix'], '.2f')} / "
                  f"pool x{fmt(row['pool_speedup_vs_navix'], '.2f')}", flush=True)
    print()
    print("| env | batch | plastix steps/s | plastix pool steps/s (reused starts) | NAVIX steps/s "
          "| plastix / NAVIX | pool / NAVIX | compile s plastix / NAVIX | minigrid (1 env) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fmt = lambda v, f: "-" if v is None else format(v, f)
        print(f"| {r['env']} | {r['batch']} | {fmt(r['plastix_steps_per_s'], ',.0f')} | "
              f"{fmt(r.get('pool_steps_per_s'), ',.0f')} ({fmt(r.get('pool_reused_starts'), '.1%')}) | "
              f"{fmt(r['navix_steps_per_s'], ',.0f')} | {fmt(r['speedup_vs_navix'], '.2f')} | "
              f"{fmt(r.get('pool_speedup_vs_navix'), '.2f')} | "
              f"{fmt(r['plastix_compile_s'], '.1f')} / {fmt(r['navix_compile_s'], '.1f')} | "
              f"{r['minigrid_steps_per_s']:,.0f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "grid_throughput.json"
    if out.exists():  # a run over some envs / batches replaces only those rows
        fresh = {(r["env"], r["batch"]) for r in rows}
        kept = [r for r in json.loads(out.read_text())["rows"] if (r["env"], r["batch"]) not in fresh]
        rows = kept + rows
    out.write_text(json.dumps({"rows": rows, "date": time.strftime("%Y-%m-%d %H:%M"),
                               "machine": platform.platform(),
                               "devices": [str(d) for d in jax.devices()]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
