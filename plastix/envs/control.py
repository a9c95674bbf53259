"""Continuous control on the host: gymnasium MuJoCo (``Hopper-v5``, ...) and the DeepMind Control Suite
(``dmc/<domain>-<task>``), as `HostVecEnv`s (numpy in and out, stepped outside ``jit``).

Conventions the agents rely on:

- actions are in ``[-1, 1]`` on every dimension (`Box(-1, 1)`), rescaled here to each env's bounds
  (Humanoid's are +-0.4), so a tanh policy needs no knowledge of the env;
- observations are float32 vectors (DMC's observation dict flattened in its key order);
- episodes end by termination (MuJoCo's unhealthy states; DMC's discount 0) or truncation at the time
  limit (1,000 steps; DMC's limit counts agent steps of ``action_repeat`` physics steps);
- every reset is seeded from (the env's base seed, its index, its episode count), and `snapshot` /
  `restore` save and set MuJoCo's whole integration state (``mj_getState``, warm starts included) with
  those counters, so a run restored from a checkpoint continues bit for bit on gymnasium MuJoCo (on
  DMC to float rounding: dm_control steps ``mj_step2`` then ``mj_step1``, and the forward pass a
  restore needs can differ in the last bit, seen after ~80 steps).
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from plastix.envs.api import Box, EnvSpec, register

GYM_MUJOCO = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Ant-v5", "Humanoid-v5", "Swimmer-v5",
              "InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5", "Pusher-v5",
              "HumanoidStandup-v5")


class ControlSetupError(ValueError):
    """An unknown DMC domain / task, or a control option out of range."""


# dm_control.suite.ALL_TASKS of dm-control 1.0.28 (tests check it), so registering needs no import
DMC_TASKS = {
    "acrobot": ("swingup", "swingup_sparse"), "ball_in_cup": ("catch",),
    "cartpole": ("balance", "balance_sparse", "swingup", "swingup_sparse", "two_poles", "three_poles"),
    "cheetah": ("run",), "dog": ("stand", "walk", "trot", "run", "fetch"),
    "finger": ("spin", "turn_easy", "turn_hard"), "fish": ("upright", "swim"), "hopper": ("stand", "hop"),
    "humanoid": ("stand", "walk", "run", "run_pure_state"), "humanoid_CMU": ("stand", "walk", "run"),
    "lqr": ("lqr_2_1", "lqr_6_2"), "manipulator": ("bring_ball", "bring_peg", "insert_ball", "insert_peg"),
    "pendulum": ("swingup",), "point_mass": ("easy", "hard"), "quadruped": ("walk", "run", "escape", "fetch"),
    "reacher": ("easy", "hard"), "stacker": ("stack_2", "stack_4"), "swimmer": ("swimmer6", "swimmer15"),
    "walker": ("stand", "walk", "run"),
}


def _require(module: str) -> Any:
    """Import an optional dependency of the control extra, or say how to install it."""
    try:
        with warnings.catch_warnings():  # dm_control probes for a display it does not need here
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{module} is missing: the control envs need `pip install -e '.[control]'` "
                          f"({err})") from None


def episode_seed(base: int, index: int, episode: int) -> int:
    """The reset seed of an env's ``episode``-th episode: independent streams per (base, index)."""
    return int(np.random.SeedSequence([base % 2**32, index, episode]).generate_state(1)[0])


def _mj_state_spec():
    return _require("mujoco").mjtState.mjSTATE_INTEGRATION


class _GymMujoco:
    """One gymnasium MuJoCo env without its wrappers; the time limit is counted here."""

    def __init__(self, env_id: str, max_steps: int):
        self.env = _require("gymnasium").make(env_id, disable_env_checker=True).unwrapped
        self.max_steps = max_steps
        space = self.env.action_space
        self.low, self.high = space.low.astype(np.float64), space.high.astype(np.float64)
        self.t = 0

    @property
    def physics(self) -> tuple[Any, Any]:
        return self.env.model, self.env.data

    def reset(self, seed: int) -> np.ndarray:
        self.t = 0
        return self.env.reset(seed=seed)[0]

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        scaled = self.low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)
        obs, reward, terminated, _, _ = self.env.step(scaled)
        self.t += 1
        return obs, float(reward), bool(terminated), self.t >= self.max_steps, {}

    def close(self) -> None:
        self.env.close()


class _DMC:
    """One DeepMind Control task; the observation dict is flattened in key order."""

    def __init__(self, domain: str, task: str, action_repeat: int):
        self.env = _require("dm_control.suite").load(domain, task, task_kwargs={"random": 0})
        spec = self.env.action_spec()
        self.low, self.high = spec.minimum.astype(np.float64), spec.maximum.astype(np.float64)
        self.action_repeat = action_repeat
        self.t = 0

    @property
    def physics(self) -> tuple[Any, Any]:
        return self.env.physics.model.ptr, self.env.physics.data.ptr

    @staticmethod
    def flat(observation: dict) -> np.ndarray:
        return np.concatenate([np.asarray(v, np.float64).ravel() for v in observation.values()])

    def reset(self, seed: int) -> np.ndarray:
        self.env.task._random = np.random.RandomState(seed)  # the task's initial-state sampler
        self.t = 0
        return self.flat(self.env.reset().observation)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        scaled = self.low + (np.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self.high - self.low)
        reward, terminated, truncated = 0.0, False, False
        for _ in range(self.action_repeat):
            ts = self.env.step(scaled)
            reward += ts.reward or 0.0
            if ts.last():
                terminated, truncated = ts.discount == 0.0, ts.discount != 0.0
                break
        self.t += 1
        return self.flat(ts.observation), reward, terminated, truncated, {}

    def close(self) -> None:
        self.env.close()


class ControlVecEnv:
    """``num_envs`` control envs stepped in turn, auto-resetting: a `HostVecEnv`."""

    def __init__(self, spec: EnvSpec, envs: list[Any]):
        self.spec = spec
        self.envs = envs
        self.num_envs = len(envs)
        self.base = np.zeros(self.num_envs, np.int64)
        self.episode = np.zeros(self.num_envs, np.int64)

    def reset(self, seed: int | np.ndarray) -> np.ndarray:
        """Start every env's first episode; ``seed`` is one base seed, or one per env."""
        self.base = np.broadcast_to(np.asarray(seed, np.int64), (self.num_envs,)).copy()
        self.episode[:] = 0
        return np.stack([e.reset(self._seed(i)) for i, e in enumerate(self.envs)]).astype(np.float32)

    def _seed(self, i: int) -> int:
        return episode_seed(int(self.base[i]), i, int(self.episode[i]))

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, np.float64)
        obs = np.empty((self.num_envs,) + self.spec.observation_space.shape, np.float32)
        final = obs.copy()
        reward = np.empty(self.num_envs, np.float32)
        terminated = np.empty(self.num_envs, bool)
        truncated = np.empty(self.num_envs, bool)
        for i, env in enumerate(self.envs):
            o, reward[i], terminated[i], truncated[i], _ = env.step(actions[i])
            final[i] = o
            if terminated[i] or truncated[i]:
                self.episode[i] += 1
                o = env.reset(self._seed(i))
            obs[i] = o
        return obs, reward, terminated, truncated, {"final_obs": final}

    def snapshot(self) -> dict[str, np.ndarray]:
        """Everything `step` depends on: MuJoCo integration states, step counters, seeds, episodes."""
        mujoco = _require("mujoco")
        spec = _mj_state_spec()
        states = []
        for env in self.envs:
            model, data = env.physics
            state = np.empty(mujoco.mj_stateSize(model, spec), np.float64)
            mujoco.mj_getState(model, data, state, spec)
            states.append(state)
        return {"physics": np.stack(states), "t": np.array([e.t for e in self.envs], np.int64),
                "base": self.base.copy(), "episode": self.episode.copy()}

    def restore(self, snap: dict[str, Any]) -> None:
        """Set the envs to a `snapshot`."""
        mujoco = _require("mujoco")
        spec = _mj_state_spec()
        for i, env in enumerate(self.envs):
            model, data = env.physics
            mujoco.mj_setState(model, data, np.asarray(snap["physics"][i], np.float64), spec)
            mujoco.mj_forward(model, data)
            env.t = int(snap["t"][i])
        self.base = np.asarray(snap["base"], np.int64).copy()
        self.episode = np.asarray(snap["episode"], np.int64).copy()

    def close(self) -> None:
        for env in self.envs:
            env.close()


@dataclass(frozen=True)
class ControlEnv:
    """A registered control id: its spec, and `vector` to build batches of it (a host env family)."""

    env_id: str
    action_repeat: int = 1

    def __post_init__(self):
        if not isinstance(self.action_repeat, int) or self.action_repeat < 1:
            raise ControlSetupError(f"action_repeat: must be a positive integer, got {self.action_repeat!r}")

    def _one(self) -> Any:
        if self.env_id.startswith("dmc/"):
            domain, task = dmc_task(self.env_id)
            return _DMC(domain, task, self.action_repeat)
        return _GymMujoco(self.env_id, self.max_steps)

    @property
    def max_steps(self) -> int:
        if self.env_id.startswith("dmc/"):
            return 1000 // self.action_repeat
        return 1000

    @cached_property
    def spec(self) -> EnvSpec:
        env = self._one()
        obs = env.reset(0)
        env.close()
        return EnvSpec(self.env_id, Box(-np.inf, np.inf, obs.shape, np.float32),
                       Box(-1.0, 1.0, env.low.shape, np.float32), self.max_steps, False)

    def vector(self, num_envs: int) -> ControlVecEnv:
        """``num_envs`` independent copies, to be seeded by ``reset``."""
        return ControlVecEnv(self.spec, [self._one() for _ in range(num_envs)])


def dmc_task(env_id: str) -> tuple[str, str]:
    """``dmc/<domain>-<task>`` -> ``(domain, task)``; unknown pairs fail with close matches."""
    name = env_id.removeprefix("dmc/")
    tasks = {f"{d}-{t}": (d, t) for d, ts in DMC_TASKS.items() for t in ts}
    if name not in tasks:
        close = difflib.get_close_matches(name, list(tasks), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join('dmc/' + c for c in close)}?" if close else ""
        raise ControlSetupError(f"env: unknown DeepMind Control task {env_id!r}.{hint} "
                                f"Accepted: dmc/<domain>-<task> for the suite's {len(tasks)} tasks.")
    return tasks[name]


def register_all() -> None:
    """Register the gymnasium MuJoCo ids and ``dmc/<domain>-<task>`` for every suite task (cheap: no
    simulator is built until an env is used). Building one without the control extra installed fails
    with the install command."""
    for env_id in GYM_MUJOCO:
        register(env_id, ControlEnv)
    for domain, tasks in DMC_TASKS.items():
        for task in tasks:
            register(f"dmc/{domain}-{task}", ControlEnv)
