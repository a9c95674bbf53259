"""Atari (Breakout) throughput, same run: (a) the raw ale-py `AtariVectorEnv` with random actions;
(b) plastix DQN on the host loop (Nature CNN -> 512, batch 32, an update every 4 agent steps, frames
stored once); (c) Dopamine's own JAX DQN agent (`dopamine-rl` 4.1.2, same network and settings) driven
on the same env; (d) plastix CALE SAC (Dopamine's CALE settings: shared Nature CNN, 512-unit heads,
batch 32, an update every 4 agent steps). Goals: (b) >= 60% of (a), (b) >= 2x (c).

Timing starts after learning has started and every update is compiled. Every row reads the whole of
each observation, reward and done it produces. Dopamine's stack (TensorFlow) cannot share plastix's
environment (its tensorflow-probability breaks on jax 0.10 beside sbx's tfp-nightly), so (c) runs in
`.venv-dopamine` (``make bench-atari`` creates it) as a subprocess of this script.

    python bench/atari_throughput.py [--steps 2000] [--dopamine-steps 2000]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from pathlib import Path

import jax
import numpy as np

RESULTS = Path(__file__).parent / "results"
GAME = "Breakout"
WARMUP = 500  # random agent steps before learning (every agent)
DOPAMINE_PYTHON = Path(__file__).resolve().parent.parent / ".venv-dopamine" / "bin" / "python"


def env_rate(steps: int) -> dict:
    """ale-py's vector env with one game, random actions; everything it returns is read."""
    from ale_py.vector_env import AtariVectorEnv

    vec = AtariVectorEnv("breakout", 1, repeat_action_probability=0.25, autoreset_mode="SameStep")
    vec.reset(seed=0)
    actions = np.random.default_rng(0).integers(0, 4, (steps, 1)).astype(np.int32)
    total = 0.0
    t = time.perf_counter()
    for a in actions:
        obs, reward, term, trunc, info = vec.step(a)
        total += float(obs.sum()) + reward.sum() + term.sum() + trunc.sum()
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "steps": steps, "steps_per_s": steps / seconds, "checksum": total}


def plastix_agent(recipe: str, env_id: str, steps: int) -> dict:
    """A recipe's agent on the host loop, one seed, one env; warm-up and compilation untimed."""
    from plastix.run.config import from_dict, load_recipe, to_dict, validate
    from plastix.run.load import build, make_loop

    data = to_dict(load_recipe(recipe))
    data.update(env=env_id, seeds=1, total_steps=WARMUP + 100 + steps)
    section = data["agent"]
    data[section]["buffer_size"] = 100_000
    data[section]["min_replay" if section == "dqn" else "learning_starts"] = WARMUP
    config = validate(from_dict(data))
    env, agent = build(config)
    loop = make_loop(env, agent, 1)
    runner = loop.init(jax.random.PRNGKey(0)[None])
    t = time.perf_counter()
    runner, _ = loop.chunk(WARMUP + 100)(runner, 0)  # random steps, then compiled updates
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    runner, out = loop.chunk(steps)(runner, WARMUP + 100)  # metrics come back as host arrays
    seconds = time.perf_counter() - t
    loop.close()
    updates = int(np.asarray(out["updated"]).sum())
    assert updates >= steps // 4 - 1, updates
    return {"compile_s": compile_s, "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds,
            "updates": updates}


def dopamine_dqn(steps: int) -> dict | None:
    """bench/_dopamine_dqn.py in .venv-dopamine; None when that environment is missing."""
    if not DOPAMINE_PYTHON.is_file():
        print(f"(no {DOPAMINE_PYTHON}: run `make bench-atari` to build it; Dopamine's row is skipped)")
        return None
    out = subprocess.run([str(DOPAMINE_PYTHON), str(Path(__file__).parent / "_dopamine_dqn.py"),
                          "--steps", str(steps), "--warmup", str(WARMUP)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--dopamine-steps", type=int, default=2_000)
    args = parser.parse_args()
    rows = {"(a) AtariVectorEnv (random actions)": env_rate(20_000),
            "(b) plastix DQN": plastix_agent("dqn_atari", f"ALE/{GAME}-v5", args.steps)}
    dopamine = dopamine_dqn(args.dopamine_steps)
    if dopamine is not None:
        rows["(c) Dopamine JAX DQN"] = dopamine
    rows["(d) plastix CALE SAC"] = plastix_agent("cale_sac", f"CALE/{GAME}-v5", args.steps)
    dqn = rows["(b) plastix DQN"]["steps_per_s"]
    print(f"{GAME}, 1 env, Nature CNN, batch 32, an update every 4 agent steps "
          f"({platform.machine()}, {jax.devices()[0].platform}, {jax.device_count()} device(s))")
    print(f"{'':<38} {'steps':>7} {'seconds':>8} {'steps/s':>9} {'plastix DQN / this':>19}")
    for name, r in rows.items():
        print(f"{name:<38} {r['steps']:>7,} {r['seconds']:>8.1f} {r['steps_per_s']:>9,.1f} "
              f"{dqn / r['steps_per_s']:>18.2f}x")
    ratios = {"dqn_over_env": dqn / rows["(a) AtariVectorEnv (random actions)"]["steps_per_s"]}
    if dopamine is not None:
        ratios["dqn_over_dopamine"] = dqn / dopamine["steps_per_s"]
    print("; ".join(f"{k}: {v:.3f}" for k, v in ratios.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "atari_throughput.json"
    out.write_text(json.dumps({"game": GAME, "rows": rows, "ratios": ratios,
                               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
