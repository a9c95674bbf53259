"""SAC on Hopper-v5: plastix's host-stepped SAC vs sbx-rl's SAC (Stable-Baselines in JAX) vs the raw env
rate, the plasticity probe's overhead, and the replay choice (device vs cpprb), all in the same run.

Settings (both agents): one env, one gradient step per env step (UTD 1), batch 256, 256-256 ReLU MLPs
for actor and both critics, Adam 3e-4, gamma 0.99, tau 0.005, learned temperature, replay 1M. Timing
starts after learning has started and the update is compiled, so every timed step updates. The env
rows step Hopper with uniform random actions and read the whole observation, reward and done.

    python bench/offpolicy_throughput.py [--steps 3000] [--sbx-steps 2000]
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
ENV_ID = "Hopper-v5"
WARMUP = 1_000  # random steps before learning (both agents)


def env_rate(steps: int) -> dict:
    """plastix's Hopper host env, random actions; everything it returns is read."""
    from plastix.envs import make

    vec = make(ENV_ID).vector(1)
    vec.reset(0)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, 1, 3))
    total = 0.0
    t = time.perf_counter()
    for a in actions:
        obs, reward, term, trunc, info = vec.step(a)
        total += obs.sum() + reward.sum() + term.sum() + trunc.sum() + info["final_obs"].sum()
    seconds = time.perf_counter() - t
    vec.close()
    return {"seconds": seconds, "steps": steps, "steps_per_s": steps / seconds, "checksum": float(total)}


def plastix_sac(steps: int, metrics: str = "", every: int = 10) -> dict:
    from plastix.agents.sac import SAC, SACConfig
    from plastix.envs import make
    from plastix.plasticity.hook import PlasticityConfig, make_hook
    from plastix.run.host_loop import HostLoop

    env = make(ENV_ID)
    agent = SAC(env.spec, SACConfig(learning_starts=WARMUP), WARMUP + steps)
    loop = HostLoop(env, agent, 1)
    runner = loop.init(jax.random.PRNGKey(0)[None])
    hook = make_hook(agent, PlasticityConfig(metrics=metrics, every=every)) if metrics else None
    t = time.perf_counter()
    runner, _ = loop.chunk(WARMUP + 100, hook)(runner, 0)  # random steps, then 100 compiled updates
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    runner, out = loop.chunk(steps, hook)(runner, WARMUP + 100)  # metrics come back as host arrays
    seconds = time.perf_counter() - t
    loop.close()
    assert np.asarray(out.updated).all() and np.isfinite(out.values["loss/total"]).all()
    return {"compile_s": compile_s, "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds,
            "updates": int(np.asarray(out.updated).sum())}


def sbx_sac(steps: int) -> dict:
    import gymnasium
    from sbx import SAC as SbxSAC

    model = SbxSAC("MlpPolicy", gymnasium.make(ENV_ID), learning_rate=3e-4, buffer_size=1_000_000,
                   learning_starts=WARMUP, batch_size=256, tau=0.005, gamma=0.99, train_freq=1,
                   gradient_steps=1, policy_kwargs={"net_arch": [256, 256]}, seed=0, verbose=0)
    t = time.perf_counter()
    model.learn(WARMUP + 100)  # random steps, then the compiled update
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - t
    return {"compile_s": compile_s, "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds}


def replay_choice(steps: int = 2_000) -> dict:
    """Add one Hopper step and sample a batch of 256 onto the device, per env step: plastix's device
    replay (jitted, buffer donated) vs cpprb (host) plus the transfer."""
    from cpprb import ReplayBuffer

    from plastix.replay import Replay

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(steps, 1, 11)).astype(np.float32)
    act = rng.uniform(-1, 1, (steps, 1, 3)).astype(np.float32)
    rew = rng.normal(size=(steps, 1)).astype(np.float32)
    done = np.zeros((steps, 1), bool)
    replay = Replay(capacity=1_000_000, num_envs=1)
    state = replay.init(jnp.zeros(11), jnp.zeros(3))

    def device_step(state, o, a, r, d, key):
        state = replay.add(state, o, a, r, d, d, o)
        batch, _ = replay.sample(state, key, 256)
        return state, sum(x.sum() for x in batch.values())

    device_step = jax.jit(device_step, donate_argnums=(0,))
    state, _ = device_step(state, obs[0], act[0], rew[0], done[0], jax.random.PRNGKey(0))
    t = time.perf_counter()
    for i in range(steps):
        state, s = device_step(state, obs[i], act[i], rew[i], done[i], jax.random.PRNGKey(i))
    float(s)
    device_s = time.perf_counter() - t

    buf = ReplayBuffer(1_000_000, {"obs": {"shape": 11}, "act": {"shape": 3}, "rew": {},
                                   "next_obs": {"shape": 11}, "done": {}})
    consume = jax.jit(lambda b: sum(x.sum() for x in b.values()))
    buf.add(obs=obs[0], act=act[0], rew=rew[0], next_obs=obs[0], done=done[0])
    consume(jax.device_put(buf.sample(256)))
    t = time.perf_counter()
    for i in range(steps):
        buf.add(obs=obs[i], act=act[i], rew=rew[i], next_obs=obs[i], done=done[i])
        s = consume(jax.device_put(buf.sample(256)))
    float(s)
    host_s = time.perf_counter() - t
    return {"steps": steps, "device_us_per_step": 1e6 * device_s / steps,
            "cpprb_us_per_step": 1e6 * host_s / steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3_000)
    parser.add_argument("--sbx-steps", type=int, default=2_000)
    args = parser.parse_args()
    rows = {"Hopper-v5 env (random actions)": env_rate(20_000),
            "plastix SAC": plastix_sac(args.steps),
            "plastix SAC + probe every 10 updates": plastix_sac(args.steps, "dormant,grama", 10),
            "sbx SAC": sbx_sac(args.sbx_steps)}
    sac = rows["plastix SAC"]["steps_per_s"]
    print(f"SAC on {ENV_ID}, 1 env, UTD 1, batch 256, 256-256 MLPs "
          f"({platform.machine()}, {jax.devices()[0].platform}, {jax.device_count()} device(s))")
    print(f"{'':<38} {'steps':>7} {'seconds':>8} {'steps/s':>9} {'plastix SAC / this':>19}")
    for name, r in rows.items():
        print(f"{name:<38} {r['steps']:>7,} {r['seconds']:>8.1f} {r['steps_per_s']:>9,.1f} "
              f"{sac / r['steps_per_s']:>18.2f}x")
    probed = rows["plastix SAC + probe every 10 updates"]["steps_per_s"]
    ratios = {"sac_over_sbx": sac / rows["sbx SAC"]["steps_per_s"],
              "sac_over_env": sac / rows["Hopper-v5 env (random actions)"]["steps_per_s"],
              "probe_overhead": sac / probed - 1.0}
    replay = replay_choice()
    print(f"plastix SAC is {ratios['sac_over_sbx']:.2f}x sbx's SAC and runs at "
          f"{100 * ratios['sac_over_env']:.1f}% of the raw env rate; the probe (dormant + GraMa on actor and "
          f"critics every 10 updates) costs {100 * ratios['probe_overhead']:.1f}%")
    print(f"replay, add one step + sample 256 to the device: device replay "
          f"{replay['device_us_per_step']:.0f} us, cpprb {replay['cpprb_us_per_step']:.0f} us per step")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "offpolicy_throughput.json"
    out.write_text(json.dumps({"env": ENV_ID, "rows": rows, "ratios": ratios, "replay": replay,
                               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
