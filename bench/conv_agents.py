"""Convolutional agents through `plastix train`'s own code path on CPU, against the same update jitted
straight-line and against PyTorch.

Two agents: PPO with an Impala x1 encoder (separate actor and critic CNNs, `--net.encoder.kind impala`)
on MiniGrid-DoorKey-5x5 as 56x56x3 pixels (`--observation rgb`), and DQN with a Nature CNN (SAME
padding, Dense 512, 18 actions, batch 32, an update every 4 iterations, Dopamine's Adam) on a synthetic
JAX env with the ALE's observation (84x84x4 uint8 frame stacks, frames stored once in the replay).
Per agent, every number the best of interleaved rounds, every output read:

- in-loop: the loop's chunk (`DeviceLoop.chunk`, vmapped over seeds, compiled as train compiles it),
  per iteration (DQN: per update cycle of 4 iterations, replay adds and acting included);
- scanned: the same chunk as one ``lax.scan`` with PPO's epochs a scan too (the program `train` ran
  before the host dispatch; skip with ``--no-scanned``: it is ~10x slower);
- straight-line: the iteration's work jitted alone, no loop around it (PPO: the rollout of
  ``num_envs x num_steps`` env steps and `PPO.learn` on it; DQN: `DQN._update`, sampling included);
- bare update, plastix vs PyTorch (CPU, ``channels_last``): one gradient step on one fixed batch, one
  seed (DQN: CleanRL's DQN-Atari update, Huber as Dopamine; PPO: one clipped-objective minibatch step).

Goals: in-loop / straight-line <= 1.3x; plastix / PyTorch <= 1.5x. ``--seeds 2`` also reports the cost
per seed of two seeds in the loop against one, both ways `HostDispatch` can run them (a call per seed,
the default on one device, and one call vmapped over the seeds), and of the bare update vmapped over two
seeds' weights against one (`plastix.nets.per_seed` keeps these from becoming grouped convolutions).

    python bench/conv_agents.py [--rounds 3] [--seeds 1] [--no-scanned] [--ppo-envs 4 --ppo-steps 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

RESULTS = Path(__file__).parent / "results"


def checksum(tree: Any) -> float:
    """Read all of ``tree`` (a sum), so no output goes unconsumed."""
    return float(sum(np.asarray(x, np.float64).sum() for x in jax.tree.leaves(jax.device_get(tree))))


# --------------------------------------------------------------------------- a synthetic ALE-shaped env
def frames_env():
    """84x84x4 uint8 frame stacks (a new random frame each step), 18 actions, random rewards, episodes of
    at most 1000 steps: the ALE's observation for a Nature-CNN DQN, stepped on device."""
    from plastix.envs.api import Box, Discrete, EnvSpec
    from plastix.envs.api import Env as Base

    @dataclass(frozen=True, eq=False)
    class Frames(Base):
        env_id: str = "Bench-Frames84-v0"

        @property
        def observation_space(self):
            return Box(0, 255, (84, 84, 4), jnp.uint8)

        @property
        def action_space(self):
            return Discrete(18)

        @property
        def max_steps(self):
            return 1000

        @property
        def spec(self) -> EnvSpec:
            return EnvSpec(self.env_id, self.observation_space, self.action_space, self.max_steps, True,
                           frame_stack=4, frame_padding="repeat")

        def reset_env(self, key, params=None):
            frame = jax.random.randint(key, (84, 84, 1), 0, 256).astype(jnp.uint8)
            return {"frames": jnp.repeat(frame, 4, -1), "t": jnp.int32(0)}

        def step_env(self, key, state, action, params=None):
            k_frame, k_reward, k_end = jax.random.split(key, 3)
            frame = jax.random.randint(k_frame, (84, 84, 1), 0, 256).astype(jnp.uint8)
            t = state["t"] + 1
            reward = (jax.random.uniform(k_reward) < 0.05).astype(jnp.float32)
            return ({"frames": jnp.concatenate([state["frames"][..., 1:], frame], -1), "t": t}, reward,
                    jax.random.uniform(k_end) < 0.002, t >= 1000, {})

        def observe(self, state, params=None):
            return state["frames"]

    return Frames()


# --------------------------------------------------------------------------- timing helpers
class Timer:
    """Interleaved rounds: each ``add``-ed case runs once per round; the best round counts."""

    def __init__(self) -> None:
        self.cases: dict[str, tuple[Callable[[], Any], float]] = {}
        self.best: dict[str, float] = {}
        self.checksums: dict[str, float] = {}

    def add(self, name: str, run: Callable[[], Any], per: float = 1.0) -> None:
        checksum(run())  # warm: compiled, caches filled
        self.cases[name] = (run, per)

    def rounds(self, n: int) -> None:
        """Each round times every case until its whole output is ready, then reads it (untimed)."""
        for _ in range(n):
            for name, (run, per) in self.cases.items():
                t = time.perf_counter()
                out = jax.block_until_ready(run())
                self.best[name] = min(self.best.get(name, float("inf")), (time.perf_counter() - t) / per)
                self.checksums[name] = checksum(out)


def ms(seconds: float) -> float:
    return seconds * 1e3


# --------------------------------------------------------------------------- DQN
def dqn_cases(timer: Timer, seeds: int, scanned: bool, cycles: int) -> dict:
    from plastix.agents.dqn import DQN, DQNConfig
    from plastix.nets.build import EncoderConfig, NetConfig
    from plastix.run.loop import DeviceLoop, HostDispatch

    env = frames_env()
    net = NetConfig(encoder=EncoderConfig(kind="nature"), hidden=(512,), activation="relu")
    config = DQNConfig(num_envs=1, buffer_size=10_000, min_replay=500, batch_size=32, update_period=4,
                       target_update_period=8000, lr=6.25e-5, adam_eps=1.5e-4)
    agent = DQN(env.spec, config, 100_000, net)
    warm = agent.warmup + 3  # the next chunk starts on an update cycle
    timed = 4 * cycles
    info = {"settings": {"batch": 32, "update_period": 4, "buffer": 10_000, "net": "nature SAME -> 512",
                         "cycles_per_chunk": cycles}}
    runners = {}
    for s in sorted({1, seeds}):
        loop = DeviceLoop(env, agent, s)
        runner = loop.init(jax.vmap(jax.random.PRNGKey)(jnp.arange(s)))
        runners[s] = runner = loop.chunk(warm, None, runner)(runner, np.int32(0))[0]  # replay past warm-up
        t = time.perf_counter()
        chunk = loop.chunk(timed, None, runner)
        info[f"compile_s_seeds{s}"] = time.perf_counter() - t
        timer.add(f"dqn in-loop seeds={s}", lambda c=chunk, r=runner: c(r, np.int32(warm)), cycles * s)
    if seeds > 1:
        vmapped = HostDispatch(env, agent, seeds, per_seed=False).chunk(timed)
        timer.add(f"dqn in-loop seeds={seeds} vmapped", lambda: vmapped(runners[seeds], np.int32(warm)),
                  cycles * seeds)
    runner = runners[1]
    if scanned:
        slow = DeviceLoop(env, agent, 1, dispatch=False).chunk(timed, None, runner)
        timer.add("dqn scanned", lambda: slow(runner, np.int32(warm)), cycles)
    state = jax.tree.map(lambda x: x[0], runner.agent)  # one seed, as train dispatches each seed on CPU
    update = jax.jit(agent._update)
    timer.add("dqn straight-line update", lambda: update(state, jax.random.PRNGKey(1), np.int32(warm)))
    batch = agent.replay.sample(state.replay, jax.random.PRNGKey(2), 32, 1.0)[0]
    info["bare"] = dqn_bare(timer, agent, state, batch, seeds)
    return info


def dqn_bare(timer: Timer, agent: Any, state: Any, batch: dict, seeds: int, pytorch: bool = True) -> dict:
    """One gradient step of ``agent``'s loss on ``batch`` in plastix (jitted, one seed; and vmapped over
    ``seeds``) and, with ``pytorch``, CleanRL's Huber / Adam update of the same plain DQN network."""
    import optax

    grad = jax.grad(agent.loss, has_aux=True)

    def step(params, opt_state, target):
        grads, _ = grad(params, target, batch, jax.random.PRNGKey(0))
        updates, opt_state = agent.tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    one = jax.jit(step)
    timer.add("dqn bare plastix", lambda: one(state.params, state.opt_state, state.target_params))
    if seeds > 1:
        stack = jax.tree.map(lambda x: jnp.stack([x] * seeds), (state.params, state.opt_state,
                                                                state.target_params))
        many = jax.jit(jax.vmap(step))
        timer.add(f"dqn bare plastix vmap seeds={seeds}", lambda: many(*stack), seeds)
    if not pytorch:
        return {"batch": 32}
    obs, next_obs = np.array(batch["obs"]), np.array(batch["next_obs"])  # writable copies for torch
    torch_dqn(timer, obs, next_obs, np.asarray(batch["action"]), np.asarray(batch["return"]),
              np.asarray(batch["discount"]), agent.num_actions)
    return {"batch": 32}


def torch_dqn(timer: Timer, obs, next_obs, action, ret, discount, actions: int) -> None:
    """CleanRL's DQN-Atari update (Huber, as Dopamine) on the same network: Nature CNN with TF's SAME
    padding (explicit zero pads), Dense 512, channels_last."""
    import torch
    from torch import nn

    def net():
        return nn.Sequential(
            nn.ZeroPad2d((2, 2, 2, 2)), nn.Conv2d(4, 32, 8, 4), nn.ReLU(),
            nn.ZeroPad2d((1, 2, 1, 2)), nn.Conv2d(32, 64, 4, 2), nn.ReLU(),
            nn.ZeroPad2d((1, 1, 1, 1)), nn.Conv2d(64, 64, 3, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 11 * 11, 512), nn.ReLU(), nn.Linear(512, actions),
        ).to(memory_format=torch.channels_last)

    q, target = net(), net()
    target.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=6.25e-5, eps=1.5e-4)
    # NHWC uint8 viewed as NCHW: exactly the channels_last layout
    o = torch.from_numpy(obs).permute(0, 3, 1, 2)
    o2 = torch.from_numpy(next_obs).permute(0, 3, 1, 2)
    a, r, d = (torch.from_numpy(np.asarray(x)) for x in (action.astype(np.int64), ret, discount))

    def update():
        with torch.no_grad():
            target_max = target(o2.float() / 255.0).max(1).values
            td_target = r + d * target_max
        old = q(o.float() / 255.0).gather(1, a[:, None]).squeeze(1)
        loss = nn.functional.smooth_l1_loss(old, td_target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach().numpy()

    timer.add("dqn bare pytorch", update)


# --------------------------------------------------------------------------- PPO
def ppo_cases(timer: Timer, seeds: int, scanned: bool, envs: int, steps: int, minibatches: int,
              iterations: int) -> dict:
    import plastix.envs as E
    from plastix.agents.ppo import PPO, PPOConfig
    from plastix.nets.build import EncoderConfig, NetConfig
    from plastix.run.loop import DeviceLoop, HostDispatch, Runner, make_iteration

    env = E.make("MiniGrid-DoorKey-5x5-v0", observation="rgb")
    net = NetConfig(encoder=EncoderConfig(kind="impala"))
    config = PPOConfig(num_envs=envs, num_steps=steps, num_minibatches=minibatches)
    agent = PPO(env.spec, config, 1000, net)
    info = {"settings": {"num_envs": envs, "num_steps": steps, "num_minibatches": minibatches, "epochs": 1,
                         "net": "impala x1 actor + critic, 64-64 tanh", "iterations_per_chunk": iterations}}
    runners = {}
    for s in sorted({1, seeds}):
        loop = DeviceLoop(env, agent, s)
        runners[s] = runner = loop.init(jax.vmap(jax.random.PRNGKey)(jnp.arange(s)))
        t = time.perf_counter()
        chunk = loop.chunk(iterations, None, runner)
        info[f"compile_s_seeds{s}"] = time.perf_counter() - t
        timer.add(f"ppo in-loop seeds={s}", lambda c=chunk, r=runner: c(r, np.int32(0)), iterations * s)
    if seeds > 1:
        vmapped = HostDispatch(env, agent, seeds, per_seed=False).chunk(iterations)
        timer.add(f"ppo in-loop seeds={seeds} vmapped", lambda: vmapped(runners[seeds], np.int32(0)),
                  iterations * seeds)
    runner = runners[1]
    if scanned:
        unroll, agent.unroll = agent.unroll, False
        slow = DeviceLoop(env, agent, 1, dispatch=False).chunk(iterations, None, runner)
        agent.unroll = unroll
        timer.add("ppo scanned", lambda: slow(runner, np.int32(0)), iterations)
    # straight-line: the rollout (the iteration with its learning left out), and learn on one rollout
    collected = {}

    def keep(state, transitions, last_obs, key, index, update=None):
        collected["t"] = (transitions, last_obs)  # read back inside the same trace
        return state, {}

    no_learn = SimpleNamespace(num_envs=agent.num_envs, steps_per_iteration=agent.steps_per_iteration,
                               final_obs=agent.final_obs, act=agent.act, schedule=agent.schedule, learn=keep)
    rollout_step = make_iteration(env, no_learn)

    def rollout(r: Runner):
        r, _ = rollout_step(r, jnp.int32(0))
        return r, collected["t"]

    one = jax.tree.map(lambda x: x[0], runner)  # one seed, as train dispatches each seed on CPU
    rollout_fn = jax.jit(rollout)
    timer.add("ppo straight-line rollout", lambda: rollout_fn(one))
    _, (transitions, last_obs) = rollout_fn(one)
    learn = jax.jit(lambda st, tr, lo: agent.learn(st, tr, lo, jax.random.PRNGKey(3), 0))
    timer.add("ppo straight-line learn", lambda: learn(one.agent, transitions, last_obs))
    info["bare"] = ppo_bare(timer, agent, one.agent, envs * steps // minibatches)
    return info


def ppo_bare(timer: Timer, agent: Any, state: Any, size: int) -> dict:
    """One clipped-objective minibatch step of ``size`` samples in plastix (jitted) and PyTorch."""
    import optax

    rng = np.random.default_rng(0)
    obs = rng.integers(0, 256, (size, 56, 56, 3), np.uint8)
    action = rng.integers(0, agent.num_actions, size).astype(np.int32)
    adv = rng.normal(size=size).astype(np.float32)
    batch = {"obs": jnp.asarray(obs), "action": jnp.asarray(action), "log_prob": jnp.full(size, -1.9),
             "value": jnp.zeros(size), "advantage": jnp.asarray(adv), "return": jnp.ones(size)}
    grad = jax.grad(agent.loss, has_aux=True)

    def step(params, opt_state):
        grads, _ = grad(params, batch)
        updates, opt_state = agent.tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    one = jax.jit(step)
    timer.add("ppo bare plastix", lambda: one(state.params, state.opt_state))
    torch_ppo(timer, obs, action, adv, agent.num_actions)
    return {"minibatch": size}


def torch_ppo(timer: Timer, obs, action, adv, actions: int) -> None:
    """The same step in PyTorch: two Impala x1 CNNs (actor, critic), 64-64 tanh, clipped surrogate and
    clipped value loss, entropy bonus, global-norm clip 0.5, Adam; channels_last."""
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c0, self.c1 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

        def forward(self, x):
            return x + self.c1(torch.relu(self.c0(torch.relu(x))))

    def impala(head: int):
        layers, c_in = [], 3
        for c in (16, 32, 32):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.MaxPool2d(3, 2, padding=1), Residual(c),
                       Residual(c)]
            c_in = c
        layers += [nn.ReLU(), nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.Tanh(), nn.Linear(64, 64),
                   nn.Tanh(), nn.Linear(64, head)]
        return nn.Sequential(*layers).to(memory_format=torch.channels_last)

    actor, critic = impala(actions), impala(1)
    params = [*actor.parameters(), *critic.parameters()]
    opt = torch.optim.Adam(params, lr=2.5e-4, eps=1e-5)
    o = torch.from_numpy(obs).permute(0, 3, 1, 2)
    a = torch.from_numpy(action.astype(np.int64))
    advantage = torch.from_numpy(adv)
    old_log_prob = torch.full_like(advantage, -1.9)
    old_value, ret = torch.zeros_like(advantage), torch.ones_like(advantage)

    def update():
        x = o.float() / 255.0
        logits, value = actor(x), critic(x)[:, 0]
        log_probs = torch.log_softmax(logits, -1)
        ratio = torch.exp(log_probs.gather(1, a[:, None])[:, 0] - old_log_prob)
        norm = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        pg = torch.maximum(-norm * ratio, -norm * ratio.clamp(0.8, 1.2)).mean()
        v_clip = old_value + (value - old_value).clamp(-0.2, 0.2)
        v = 0.5 * torch.maximum((value - ret) ** 2, (v_clip - ret) ** 2).mean()
        entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
        loss = pg + 0.5 * v - 0.01 * entropy
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 0.5)
        opt.step()
        return loss.detach().numpy()

    timer.add("ppo bare pytorch", update)


# --------------------------------------------------------------------------- report
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=1, help="also time this many seeds (per seed)")
    parser.add_argument("--no-scanned", dest="scanned", action="store_false")
    parser.add_argument("--agents", default="dqn,ppo")
    parser.add_argument("--dqn-cycles", type=int, default=16, help="update cycles per timed DQN chunk")
    parser.add_argument("--ppo-envs", type=int, default=4)
    parser.add_argument("--ppo-steps", type=int, default=16)
    parser.add_argument("--ppo-minibatches", type=int, default=2)
    parser.add_argument("--ppo-iterations", type=int, default=2, help="iterations per timed PPO chunk")
    parser.add_argument("--out", default=str(RESULTS / "conv_agents.json"))
    args = parser.parse_args()
    import torch

    timer, info = Timer(), {}
    agents = args.agents.split(",")
    if "dqn" in agents:
        info["dqn"] = dqn_cases(timer, args.seeds, args.scanned, args.dqn_cycles)
    if "ppo" in agents:
        info["ppo"] = ppo_cases(timer, args.seeds, args.scanned, args.ppo_envs, args.ppo_steps,
                                args.ppo_minibatches, args.ppo_iterations)
    timer.rounds(args.rounds)
    best = {k: ms(v) for k, v in timer.best.items()}
    ratios = {}
    if "dqn" in agents:
        ratios["dqn in-loop / straight-line"] = best["dqn in-loop seeds=1"] / best["dqn straight-line update"]
        ratios["dqn plastix / pytorch (bare update)"] = best["dqn bare plastix"] / best["dqn bare pytorch"]
        if args.scanned:
            ratios["dqn scanned / in-loop"] = best["dqn scanned"] / best["dqn in-loop seeds=1"]
    if "ppo" in agents:
        straight = best["ppo straight-line rollout"] + best["ppo straight-line learn"]
        ratios["ppo in-loop / straight-line"] = best["ppo in-loop seeds=1"] / straight
        ratios["ppo plastix / pytorch (bare update)"] = best["ppo bare plastix"] / best["ppo bare pytorch"]
        if args.scanned:
            ratios["ppo scanned / in-loop"] = best["ppo scanned"] / best["ppo in-loop seeds=1"]
    for a in agents:
        if args.seeds > 1:
            ratios[f"{a} per seed, {args.seeds} seeds / 1 seed"] = (
                best[f"{a} in-loop seeds={args.seeds}"] / best[f"{a} in-loop seeds=1"])
            ratios[f"{a} per seed, {args.seeds} seeds vmapped / 1 seed"] = (
                best[f"{a} in-loop seeds={args.seeds} vmapped"] / best[f"{a} in-loop seeds=1"])
    if "dqn" in agents and args.seeds > 1:
        vmapped = best[f"dqn bare plastix vmap seeds={args.seeds}"]
        ratios[f"dqn bare per seed, vmap {args.seeds} / 1"] = vmapped / best["dqn bare plastix"]
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    print(f"conv agents on {platform.machine()} ({jax.devices()[0].platform}, {jax.device_count()} "
          f"device(s), torch {torch.__version__} {torch.get_num_threads()} threads), best of {args.rounds} "
          f"rounds, load {' '.join(load)}")
    print("DQN: ms per update cycle (4 iterations) in the loop, per update otherwise; PPO: ms per iteration "
          "in the loop and for rollout + learn, per minibatch step for the bare update")
    print(f"{'case':<42} {'ms':>10}")
    for name, value in best.items():
        print(f"{name:<42} {value:>10.1f}")
    for name, value in ratios.items():
        goal = {"straight-line": " (goal <= 1.3x)", "pytorch": " (goal <= 1.5x)"}
        goal = next((g for k, g in goal.items() if k in name), "")
        print(f"{name:<52} {value:>6.2f}x{goal}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"ms": best, "ratios": ratios, "info": info, "rounds": args.rounds,
                               "checksums": timer.checksums, "loadavg_at_end": load,
                               "date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()},
                              indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
