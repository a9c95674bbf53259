"""Random-action throughput of the JAX MinAtar games: plastix vs gymnax 1.0.1 vs pgx-minatar 0.5.1, same run.

Each JAX implementation runs a batched step (plastix: ``step_batch``; gymnax: ``vmap(env.step)``; pgx:
``vmap(pgx.experimental.auto_reset(env.step, env.init))``) inside ``lax.scan`` under one ``jit``, each with
its own auto-reset, on its minimal action set (the ``-v1`` ids), random actions; every step's whole
observation, reward and done are summed into the scan's output, so XLA computes all of them. Compile time
is measured apart from steps/s (the best of ``--rounds`` timed runs after a warm-up, the packages' runs
interleaved within each round). The numpy reference
(``minatar.Environment``) steps one env with random actions, reading ``state()`` every step. The
harness alone (a null env of the game's observation shape whose step reads its key and action and lights
one observation entry in zeros) is the floor every package pays here: the per-env key split, the action
draw, and writing and reading the observation.

Protocols differ (each is run as it ships): plastix plays the reference's (sticky actions 0.1, difficulty
ramping, no step cap: Freeway terminates at 2,501 steps); gymnax has no sticky actions and truncates at
1,000 steps (Freeway 2,500); pgx has sticky actions 0.1, ramping always on, no cap.

    python bench/minatar_throughput.py [--games breakout ...] [--batches 1 2048] [--steps N] [--rounds R]
    python bench/minatar_throughput.py --steps 5 --rounds 1 --reference-steps 100 --out /tmp/m.json  # a check
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(__file__).parent / "results"
GAMES = {"asterix": "Asterix", "breakout": "Breakout", "freeway": "Freeway", "seaquest": "Seaquest",
         "space_invaders": "SpaceInvaders"}
STEPS = {1: 10_000, 2048: 200}  # scan length per batch size (--steps overrides)
IMPLS = ("plastix", "gymnax", "pgx")
PROTOCOL = {"plastix": "sticky 0.1, ramping, no cap", "gymnax": "no sticky, 1,000-step cap (Freeway 2,500)",
            "pgx": "sticky 0.1, ramping on, no cap"}


def compile_run(reset, step_batch, num_actions: int, batch: int, horizon: int) -> tuple[float, Any]:
    """(compile seconds, the compiled program) of ``horizon`` batched random-action steps, warmed up."""

    def run(key):
        state = jax.vmap(reset)(jax.random.split(key, batch))

        def body(state, k):
            k_act, k_env = jax.random.split(k)
            actions = jax.random.randint(k_act, (batch,), 0, num_actions)
            state, obs, reward, done = step_batch(jax.random.split(k_env, batch), state, actions)
            # the whole observation, reward and done are read, so XLA computes all of them
            return state, reward.sum() + obs.astype(jnp.float32).sum() + done.sum()

        return jax.lax.scan(body, state, jax.random.split(key, horizon))[1].sum()

    t = time.perf_counter()
    compiled = jax.jit(run).lower(jax.random.PRNGKey(0)).compile()
    compile_s = time.perf_counter() - t
    jax.block_until_ready(compiled(jax.random.PRNGKey(1)))
    return compile_s, compiled


def best_seconds(programs: dict[str, Any], rounds: int) -> dict[str, float]:
    """Each program's best time over ``rounds`` rounds, the programs interleaved within each round, so
    a machine whose speed drifts (a shared VM's does) slows every program alike."""
    best = dict.fromkeys(programs, float("inf"))
    for i in range(rounds):
        for name, compiled in programs.items():
            t = time.perf_counter()
            jax.block_until_ready(compiled(jax.random.PRNGKey(2 + i)))
            best[name] = min(best[name], time.perf_counter() - t)
    return best


def plastix_fns(game: str):
    import plastix.envs as E

    env = E.make(f"MinAtar/{GAMES[game]}-v1")

    def reset(key):
        return env.reset(key)[1]

    def step_batch(keys, state, actions):
        obs, state, reward, terminated, truncated, _ = env.step_batch(keys, state, actions)
        return state, obs, reward, terminated | truncated

    return reset, step_batch, env.action_space.n


def gymnax_fns(game: str):
    import gymnax

    env, params = gymnax.make(f"{GAMES[game]}-MinAtar")

    def reset(key):
        return env.reset(key, params)[1]

    def step(key, state, action):
        obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        return state, obs, reward, terminated | truncated

    return reset, jax.vmap(step), env.num_actions


def pgx_fns(game: str):
    import importlib

    from pgx.experimental import auto_reset

    module = importlib.import_module(f"pgx_minatar.{game}")
    env = getattr(module, f"MinAtar{GAMES[game]}")()
    stepper = auto_reset(env.step, env.init)

    def step(key, state, action):
        state = stepper(state, action, key)
        return state, state.observation, state.rewards[0], state.terminated | state.truncated

    return env.init, jax.vmap(step), int(env.num_actions)


def harness_fns(game: str):
    """A null env with the game's observation shape: what the harness itself costs per env-step."""
    import plastix.envs as E

    env = E.make(f"MinAtar/{GAMES[game]}-v1")
    shape = env.observation_space.shape

    def lit(entry):
        return jnp.zeros(int(np.prod(shape)), jnp.bool_).at[entry].set(True, mode="drop").reshape(shape)

    def step_batch(keys, state, actions):
        state = state + actions + jax.random.key_data(keys)[:, 0].astype(jnp.int32)
        return state, jax.vmap(lit)(state & 255), state.astype(jnp.float32), (state & 255) == 0

    return (lambda key: jnp.int32(0)), step_batch, env.action_space.n


def reference_steps_per_s(game: str, steps: int) -> float:
    from minatar import Environment

    env = Environment(game)
    env.seed(0)
    env.reset()
    actions = env.minimal_action_set()
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for _ in range(steps):
        _, terminal = env.act(actions[rng.integers(len(actions))])
        env.state()
        if terminal:
            env.reset()
    return steps / (time.perf_counter() - t)


def _fmt(v, f):
    return "-" if v is None else format(v, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", nargs="+", default=list(GAMES), choices=list(GAMES))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2048])
    parser.add_argument("--steps", type=int, default=0, help="scan length for every batch (0: per batch)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved timed rounds per measurement (the best counts)")
    parser.add_argument("--reference-steps", type=int, default=5_000, help="numpy reference steps")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--out", type=Path, default=RESULTS / "minatar_throughput.json",
                        help="JSON file (rows of games / batches run again are replaced)")
    args = parser.parse_args()
    makers = {"plastix": plastix_fns, "gymnax": gymnax_fns, "pgx": pgx_fns, "harness": harness_fns}
    rows = []
    for game in args.games:
        ref = reference_steps_per_s(game, args.reference_steps)
        for batch in args.batches:
            row = {"game": game, "batch": batch, "reference_steps_per_s": ref}
            horizon = args.steps or STEPS.get(batch, 200)
            programs = {}
            for impl in (*args.impls, "harness"):
                reset, step_batch, n_actions = makers[impl](game)
                row[f"{impl}_compile_s"], programs[impl] = compile_run(
                    reset, step_batch, n_actions, batch, horizon)
            for impl, seconds in best_seconds(programs, args.rounds).items():
                row[f"{impl}_steps_per_s"] = batch * horizon / seconds
            for impl in IMPLS:
                row.setdefault(f"{impl}_steps_per_s", None)
                row.setdefault(f"{impl}_compile_s", None)
            p, g, x = (row[f"{i}_steps_per_s"] for i in IMPLS)
            best = max((v for v in (g, x) if v), default=None)
            row["speedup_vs_best"] = p / best if p and best else None
            row["steps"] = horizon
            rows.append(row)
            print(f"{GAMES[game]:<14} b={batch:<5} plastix {_fmt(p, ',.0f'):>11}/s "
                  f"({_fmt(row['plastix_compile_s'], '.1f')}s)  gymnax {_fmt(g, ',.0f'):>11}/s "
                  f"({_fmt(row['gymnax_compile_s'], '.1f')}s)  pgx {_fmt(x, ',.0f'):>11}/s "
                  f"({_fmt(row['pgx_compile_s'], '.1f')}s)  harness alone "
                  f"{row['harness_steps_per_s']:,.0f}/s  numpy {ref:,.0f}/s  "
                  f"x{_fmt(row['speedup_vs_best'], '.2f')}", flush=True)
    print()
    print("Protocols: " + "; ".join(f"{k}: {v}" for k, v in PROTOCOL.items()) + ". Minimal action sets.")
    print()
    print("| game | batch | plastix steps/s | gymnax steps/s | pgx steps/s | plastix / max(gymnax, pgx) "
          "| compile s plastix / gymnax / pgx | harness alone steps/s | numpy reference (1 env) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {GAMES[r['game']]} | {r['batch']} | {_fmt(r['plastix_steps_per_s'], ',.0f')} | "
              f"{_fmt(r['gymnax_steps_per_s'], ',.0f')} | {_fmt(r['pgx_steps_per_s'], ',.0f')} | "
              f"{_fmt(r['speedup_vs_best'], '.2f')} | {_fmt(r['plastix_compile_s'], '.1f')} / "
              f"{_fmt(r['gymnax_compile_s'], '.1f')} / {_fmt(r['pgx_compile_s'], '.1f')} | "
              f"{_fmt(r.get('harness_steps_per_s'), ',.0f')} | {r['reference_steps_per_s']:,.0f} |")
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # a run over some games / batches replaces only those rows
        fresh = {(r["game"], r["batch"]) for r in rows}
        kept = [r for r in json.loads(out.read_text())["rows"] if (r["game"], r["batch"]) not in fresh]
        rows = kept + rows
    out.write_text(json.dumps({"rows": rows, "protocols": PROTOCOL, "date": time.strftime("%Y-%m-%d %H:%M"),
                               "machine": platform.platform(),
                               "devices": [str(d) for d in jax.devices()]}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
