"""Atari (Breakout) throughput, same run: (a) the raw ale-py `AtariVectorEnv` with random actions;
(b) plastix DQN on the host loop (Nature CNN -> 512, batch 32, an update every 4 agent steps, frames
stored once); (c) Dopamine's own JAX DQN agent (`dopamine-rl` 4.1.2, same network and settings) driven
on the same env; (d) plastix CALE SAC (Dopamine's CALE settings: shared Nature CNN, 512-unit heads,
batch 32, an update every 4 agent steps); (e) plastix DER (`der_atari100k`: C51, dueling, double Q,
NoisyNet, prioritised replay, an update every agent step). Goals: (b) >= 60% of (a), (b) >= 2x (c). For
(b) and (e) also where an update cycle (the steps between two updates) goes (`dqn_profile`), against
the bare update (and for (b) CleanRL's PyTorch update of the same network on the same batch): goal
cycle <= 1.5x the bare update.

Timing starts after learning has started and every update is compiled. Every row reads the whole of
each observation, reward and done it produces. Dopamine's stack (TensorFlow) cannot share plastix's
environment (its tensorflow-probability breaks on jax 0.10 beside sbx's tfp-nightly), so (c) runs in
`.venv-dopamine` (``make bench-atari`` creates it) as a subprocess of this script.

    python bench/atari_throughput.py [--steps 2000] [--dopamine-steps 2000] [--der-steps 400]
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
    updates = int(np.asarray(out.updated).sum())
    period = getattr(agent, "update_period", None) or agent.config.update_period  # SAC's follows from utd
    assert updates >= steps // period - 1, updates
    row = {"compile_s": compile_s, "seconds": seconds, "steps": steps, "steps_per_s": steps / seconds,
           "updates": updates}
    if section == "dqn":
        row["profile_ms"] = dqn_profile(loop, agent, runner, rounds=8, pytorch=recipe == "dqn_atari")
        row["profile_ms"]["cycle"] = period * 1e3 * seconds / steps
    loop.close()
    return row


def dqn_profile(loop, agent, runner, rounds: int, pytorch: bool) -> dict[str, float]:
    """Where a DQN update cycle (the agent steps between updates) goes, each part timed alone on the
    trained loop's own state, best of ``rounds`` interleaved, every output read: the host loop's jitted
    call without an update (store the step, act) and with one, acting alone, the replay's sample, the
    bare update (`conv_agents.dqn_bare`: the jitted gradient step on a sampled batch, no replay) and, with
    ``pytorch``, CleanRL's PyTorch update of the same (plain DQN) network on the same batch."""
    import jax.numpy as jnp
    from conv_agents import Timer, dqn_bare

    from plastix.agents.api import Transitions

    state, key, obs = runner.agent, runner.key, jnp.asarray(runner.obs)
    action, aux, key = loop._act(state, obs, key)
    zeros = jnp.zeros(action.shape)
    step = [Transitions(obs=obs, action=action, reward=zeros, terminated=zeros.astype(bool),
                        truncated=zeros.astype(bool), next_obs=obs, aux=aux)]
    index = np.int32(10**6)  # past warm-up, not a target-copy step
    timer = Timer()
    calls = {"learn call, no update": (False, None), "learn call, update": (True, None)}
    held = {"state": state}

    def call(case):
        fn = loop._learn(case)

        def run():  # the call donates the state: carry the new one on
            held["state"], metrics, a, _, _ = fn(held["state"], step, obs, key, index)
            return a, metrics

        return run

    for name, case in calls.items():
        timer.add(name, call(case))
    timer.add("act", lambda: loop._act(held["state"], obs, key)[0])
    one = jax.tree.map(lambda x: x[0], held["state"])  # one seed's, new buffers: no call donates them
    sample = jax.jit(lambda replay, k: agent.replay.sample(replay, k, 32, 1.0)[0])
    timer.add("replay sample", lambda: sample(one.replay, jax.random.PRNGKey(3)))
    dqn_bare(timer, agent, one, sample(one.replay, jax.random.PRNGKey(2)), seeds=1, pytorch=pytorch)
    timer.rounds(rounds)
    return {name: seconds * 1e3 for name, seconds in timer.best.items()}


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
    parser.add_argument("--der-steps", type=int, default=400)
    args = parser.parse_args()
    rows = {"(a) AtariVectorEnv (random actions)": env_rate(20_000),
            "(b) plastix DQN": plastix_agent("dqn_atari", f"ALE/{GAME}-v5", args.steps)}
    dopamine = dopamine_dqn(args.dopamine_steps)
    if dopamine is not None:
        rows["(c) Dopamine JAX DQN"] = dopamine
    rows["(d) plastix CALE SAC"] = plastix_agent("cale_sac", f"CALE/{GAME}-v5", args.steps)
    rows["(e) plastix DER"] = plastix_agent("der_atari100k", f"ALE/{GAME}-v5", args.der_steps)
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
    profile = rows["(b) plastix DQN"]["profile_ms"]
    print("plastix DQN, ms: " + "; ".join(f"{k} {v:.1f}" for k, v in profile.items()))
    ratios["dqn_cycle_over_bare_update"] = profile["cycle"] / profile["dqn bare plastix"]
    ratios["dqn_bare_plastix_over_pytorch"] = profile["dqn bare plastix"] / profile["dqn bare pytorch"]
    der = rows["(e) plastix DER"]["profile_ms"]
    print("plastix DER, ms: " + "; ".join(f"{k} {v:.1f}" for k, v in der.items()))
    ratios["der_cycle_over_bare_update"] = der["cycle"] / der["dqn bare plastix"]
    print("; ".join(f"{k}: {v:.3f}" for k, v in ratios.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "atari_throughput.json"
    out.write_text(json.dumps({"game": GAME, "rows": rows, "ratios": ratios,
                               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
