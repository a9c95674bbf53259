"""PPO on MiniGrid-DoorKey-5x5 for 1M steps: plastix vs NAVIX's own PPO, same settings, same run.

Settings are NAVIX's bundled PPO defaults: 16 envs x 128 steps, 1 epoch, 8 minibatches, MLP 64-64 tanh,
lr 2.5e-4 (annealed), one seed. Both see MiniGrid's egocentric 7x7x3 symbolic view and MiniGrid's
max_steps (250). Reports compile time and training steps/s (compile excluded) and their ratio, what
measuring dormant + GraMa every update costs (fused into PPO's update, and as a second pass), and where
an iteration goes: the same 16 x 128 env steps with random actions timed alone, the rest being the
agent (acting, GAE, the update) and the loop.

    python bench/ppo_throughput.py [--steps 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import grid_throughput
import jax

RESULTS = Path(__file__).parent / "results"


def compiled(fn, arg) -> tuple[float, object]:
    """(compile seconds, the compiled function)."""
    t = time.perf_counter()
    out = jax.jit(fn).lower(arg).compile()
    return time.perf_counter() - t, out


def plastix_train(steps: int, probe: str = ""):
    """plastix's PPO through its own loop; ``probe``: measuring dormant and GraMa ratios every update
    (``--plasticity.metrics dormant,grama --plasticity.every 1``), ``"fused"`` into the update (the
    default) or ``"apart"`` (``--plasticity.fused false``: a second pass after it)."""
    import plastix.envs as E
    from plastix.agents.ppo import PPO, PPOConfig
    from plastix.plasticity.hook import PlasticityConfig, make_hook
    from plastix.run.loop import make_init, make_iteration

    env = E.make("MiniGrid-DoorKey-5x5-v0")
    cfg = PPOConfig()
    num_updates = steps // cfg.batch_size
    agent = PPO(env.spec, cfg, num_updates)
    init = make_init(env, agent)
    hook = make_hook(agent, PlasticityConfig(metrics="dormant,grama", every=1, fused=probe == "fused")) \
        if probe else None
    iteration = make_iteration(env, agent, hook)

    def train(key):
        runner, metrics = jax.lax.scan(iteration, init(key), jax.numpy.arange(num_updates))
        return metrics

    def final_return(m):
        return float(m["return_sum"][-20:].sum() / max(1, m["episodes"][-20:].sum()))

    return train, num_updates * cfg.batch_size, final_return


def navix_train(steps: int):
    import flax.linen as nn
    import jax.numpy as jnp
    import navix as nx
    from navix.agents import PPO, ActorCritic, PPOHparams
    from navix.agents.models import MLPEncoder

    class FlatMLP(nn.Module):
        """NAVIX's MLPEncoder on the flattened view (its PPO applies the network per observation)."""

        @nn.compact
        def __call__(self, x):
            return MLPEncoder()(x.reshape(-1).astype(jnp.float32))

    env = nx.make(
        "Navix-DoorKey-5x5-v0",
        max_steps=250,
        observation_fn=nx.observations.symbolic_first_person,
    )
    agent = PPO(
        hparams=PPOHparams(budget=steps),
        network=ActorCritic(len(env.action_set), FlatMLP(), FlatMLP()),
        env=env,
    )
    hp = agent.hparams
    done_steps = steps // (hp.num_envs * hp.num_steps) * hp.num_envs * hp.num_steps

    def train(key):
        return agent.train(key)[1]

    def final_return(logs):
        done, ret = logs["done_mask"][-20:], logs["returns"][-20:]
        return float((ret * done).sum() / max(1, done.sum()))

    return train, done_steps, final_return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    key = jax.random.PRNGKey(0)
    rows = {}
    builds = (("plastix", plastix_train), ("navix", navix_train),
              ("plastix+probe", lambda n: plastix_train(n, probe="fused")),
              ("plastix+probe apart", lambda n: plastix_train(n, probe="apart")))
    runs = {}
    for name, build in builds:
        train, steps, final_return = build(args.steps)
        compile_s, fn = compiled(train, key)
        runs[name] = (fn, final_return)
        rows[name] = {"compile_s": compile_s, "train_s": float("inf"), "steps": steps}
    # interleaved rounds, best of each: the machine's drift falls on every implementation alike
    for _ in range(args.repeats):
        for name, (fn, final_return) in runs.items():
            t = time.perf_counter()
            logs = jax.block_until_ready(fn(key))
            rows[name]["train_s"] = min(rows[name]["train_s"], time.perf_counter() - t)
            rows[name]["final_return"] = final_return(logs)
    for r in rows.values():
        r["steps_per_s"] = r["steps"] / r["train_s"]
    # where an iteration's time goes: the same 16 envs x 128 steps with random actions (whole output read)
    envs = {"plastix": grid_throughput.plastix_fns("MiniGrid-DoorKey-5x5-v0"),
            "navix": grid_throughput.navix_fns("Navix-DoorKey-5x5-v0")}
    iterations = args.steps // (16 * 128)
    split = {}
    for name, fns in envs.items():
        _, env_sps, _ = grid_throughput.measure(*fns, batch=16, horizon=128 * 50)
        total_ms = rows[name]["train_s"] / iterations * 1e3
        env_ms = 16 * 128 / env_sps * 1e3
        split[name] = {"iteration_ms": total_ms, "env_ms": env_ms, "agent_ms": total_ms - env_ms}
    ratio = rows["plastix"]["steps_per_s"] / rows["navix"]["steps_per_s"]
    print(f"PPO DoorKey-5x5, {args.steps:,} steps, 16 envs x 128 steps, 1 seed "
          f"({platform.machine()}, {jax.devices()[0].platform}, {jax.device_count()} device(s))")
    print(f"{'impl':<20} {'compile s':>10} {'train s':>9} {'steps/s':>11} {'final return':>13}")
    for name, r in rows.items():
        print(f"{name:<20} {r['compile_s']:>10.1f} {r['train_s']:>9.1f} {r['steps_per_s']:>11,.0f} "
              f"{r['final_return']:>13.3f}")
    overhead = {name: rows["plastix"]["steps_per_s"] / rows[name]["steps_per_s"] - 1
                for name in ("plastix+probe", "plastix+probe apart")}
    print(f"plastix / navix steps/s: {ratio:.2f}x (goal >= 2x); compile ratio "
          f"{rows['plastix']['compile_s'] / rows['navix']['compile_s']:.2f}")
    print("one iteration (16 envs x 128 steps + update), ms: " + "; ".join(
        f"{n} {v['iteration_ms']:.1f} = env {v['env_ms']:.1f} (random actions) + agent and loop "
        f"{v['agent_ms']:.1f}" for n, v in split.items()))
    print(f"dormant + GraMa measured every update: +{overhead['plastix+probe']:.1%} time fused into the "
          f"update (its first minibatch), +{overhead['plastix+probe apart']:.1%} as a second pass after it")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "ppo_throughput.json"
    out.write_text(json.dumps({"steps": args.steps, "rows": rows, "speedup": ratio,
                               "probe_every_update_overhead": overhead["plastix+probe"],
                               "probe_apart_every_update_overhead": overhead["plastix+probe apart"],
                               "iteration_split_ms": split,
                               "date": time.strftime("%Y-%m-%d %H:%M"),
                               "machine": platform.platform()}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
