"""DQN on MiniGrid-DoorKey-5x5: plastix's fully on-device DQN vs the raw plastix env rate vs sbx-rl's DQN
(Stable-Baselines in JAX) on the same env through plastix's gymnasium adapter, same settings, same run.

Settings (both agents): one env, an update every 4 steps on a batch of 32, learning after 1,000 steps,
replay 100k, target copy every 1,000 steps, Adam 1e-4, gamma 0.99, MLP 64-64 ReLU on the flattened
egocentric 7x7x3 view. plastix runs its whole training (act, env step, replay add, sample, update)
under one jit; sbx acts and stores on the host and jits its update. The env-rate row steps the same env
with random actions, reading the whole observation, reward and done (best of 3 calls). Compile / warm-up
excluded.

    python bench/dqn_throughput.py [--steps 100000] [--sbx-steps 20000]
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
ENV_ID = "MiniGrid-DoorKey-5x5-v0"
SETTINGS = dict(buffer_size=100_000, min_replay=1_000, batch_size=32, update_period=4,
                target_update_period=1_000, gamma=0.99, lr=1e-4)


def plastix_dqn(steps: int) -> dict:
    import plastix.envs as E
    from plastix.agents.dqn import DQN, DQNConfig
    from plastix.nets.build import NetConfig
    from plastix.run.loop import DeviceLoop

    env = E.make(ENV_ID)
    net = NetConfig(hidden=(64, 64), activation="relu")
    agent = DQN(env.spec, DQNConfig(num_envs=1, **SETTINGS), steps, net)
    loop = DeviceLoop(env, agent, 1)  # the loop `plastix train` runs, vmapped over one seed
    runner = loop.init(jax.random.PRNGKey(0)[None])
    t = time.perf_counter()
    compiled = loop.chunk(steps, None, runner)
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(runner, np.int32(0)))  # the trained agent and every metric
    seconds = time.perf_counter() - t
    metrics = out[1]
    updates = int(np.asarray(metrics.updated).sum())
    episodes = jax.device_get(metrics.episodes)
    ret = float(episodes["return_sum"].sum() / max(1, episodes["episodes"].sum()))
    return {"compile_s": compile_s, "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds,
            "updates": updates, "mean_return": ret}


def plastix_env(steps: int) -> dict:
    import plastix.envs as E

    env = E.make(ENV_ID)

    def run(key):
        obs, state = env.reset(key)

        def body(state, k):
            k_act, k_env = jax.random.split(k)
            obs, state, reward, term, trunc, _ = env.step(k_env, state, env.action_space.sample(k_act))
            return state, obs.astype(jnp.float32).sum() + reward + (term | trunc)

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1].sum()

    compiled = jax.jit(run).lower(jax.random.PRNGKey(0)).compile()
    times = []
    for i in range(3):  # best of 3: the first call of a fresh program can run at half speed here
        t = time.perf_counter()
        jax.block_until_ready(compiled(jax.random.PRNGKey(1 + i)))
        times.append(time.perf_counter() - t)
    seconds = min(times)
    return {"seconds": seconds, "steps": steps, "steps_per_s": steps / seconds}


def sbx_dqn(steps: int) -> dict:
    from sbx import DQN as SbxDQN

    from plastix.envs.gym_compat import GymEnv

    s = SETTINGS
    model = SbxDQN("MlpPolicy", GymEnv(ENV_ID), learning_rate=s["lr"], buffer_size=s["buffer_size"],
                   learning_starts=s["min_replay"], batch_size=s["batch_size"], train_freq=s["update_period"],
                   target_update_interval=s["target_update_period"], gamma=s["gamma"],
                   policy_kwargs={"net_arch": [64, 64]}, seed=0, verbose=0)
    t = time.perf_counter()
    model.learn(s["min_replay"] + 400)  # fills the warm-up and compiles the update
    warmup_s = time.perf_counter() - t
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - t
    return {"compile_s": warmup_s, "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--sbx-steps", type=int, default=20_000)
    args = parser.parse_args()
    rows = {"plastix env (random actions)": plastix_env(args.steps), "plastix DQN": plastix_dqn(args.steps),
            "sbx DQN": sbx_dqn(args.sbx_steps)}
    dqn = rows["plastix DQN"]["steps_per_s"]
    print(f"DQN on {ENV_ID}, 1 env, update every 4 steps, batch 32, MLP 64-64 "
          f"({platform.machine()}, {jax.devices()[0].platform}, {jax.device_count()} device(s))")
    print(f"{'':<30} {'steps':>8} {'seconds':>8} {'steps/s':>10} {'plastix DQN / this':>19}")
    for name, r in rows.items():
        print(f"{name:<30} {r['steps']:>8,} {r['seconds']:>8.1f} {r['steps_per_s']:>10,.0f} "
              f"{dqn / r['steps_per_s']:>18.2f}x")
    ratios = {"dqn_over_sbx": dqn / rows["sbx DQN"]["steps_per_s"],
              "dqn_over_env": dqn / rows["plastix env (random actions)"]["steps_per_s"]}
    print(f"plastix DQN is {ratios['dqn_over_sbx']:.1f}x sbx's DQN; it runs at "
          f"{100 * ratios['dqn_over_env']:.0f}% of the raw env rate")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "dqn_throughput.json"
    out.write_text(json.dumps({"env": ENV_ID, "settings": SETTINGS, "rows": rows, "ratios": ratios,
                               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
