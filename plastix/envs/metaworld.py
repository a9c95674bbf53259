"""Meta-World+ (metaworld 3.x) on the host: the multi-task sets ``Meta-World/MT1``, ``MT10``, ``MT25``,
``MT50`` and ``custom-mt`` (a task list), and the meta-RL sets ``Meta-World/ML1``, ``ML10``, ``ML25``,
``ML45``, as `HostVecEnv`s built with ``gymnasium.make_vec`` from metaworld's own registrations.

Conventions (``--metaworld.*`` options in the run config):

- one env per task of the set in every group of envs: a seed's ``num_envs`` must be a multiple of the
  set's task count, and env ``j`` of a seed always plays task ``j % tasks`` (its one-hot never moves);
- MT sets append the task one-hot to the 39-dim observation (MT10: 49 dims; `EnvSpec.num_tasks` says how
  many trailing entries it has, in `EnvSpec.task_names` order); ML sets hide it (meta-RL infers the
  task), and their training envs draw a new parametrisation of their task class at every reset;
- actions ``Box(-1, 1, (4,))``; episodes of 500 steps end by truncation (training never terminates on
  success); ``info["success"]`` is True when the episode has succeeded at any of its steps so far (the
  benchmark's notion of a solved episode), read by the loop where an episode ends;
- ``reward_version`` v2 (default) or v1, the task parametrisations (goal positions) fixed by
  ``--metaworld.seed`` for every seed of a run, resets seeded per env by the loop;
- evaluation is the benchmark's own: ``metaworld.evaluation.evaluation`` on the training tasks for MT
  sets (``eval_episodes`` per task, terminating on success), ``metalearning_evaluation`` on the held-out
  test tasks for ML sets (``meta_evals`` samplings of test parametrisations; agents that do not adapt are
  evaluated zero-shot, with no adaptation episodes: they would ignore them).

Meta-World envs cannot save their simulator and task state through gymnasium's vector env, so a run
restored from a checkpoint restarts its episodes from fresh resets, with every env on the same task as
before (agent, optimiser and replay are restored exactly; see `plastix.run.host_loop`).
"""

from __future__ import annotations

import difflib
import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from plastix.envs.api import Box, EnvSpec, register

SETS = ("MT1", "MT10", "MT25", "MT50", "custom-mt", "ML1", "ML10", "ML25", "ML45")
REWARD_VERSIONS = ("v1", "v2")
VECTOR_STRATEGIES = ("sync", "async")
EPISODE_STEPS = 500


class MetaWorldSetupError(ValueError):
    """An unknown task, a set that does not fit the options, or an option out of range."""


def _require(module: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{module} is missing: the Meta-World envs need `pip install -e '.[metaworld]'` "
                          f"({err})") from None


def all_tasks() -> tuple[str, ...]:
    """Every task name metaworld ships (``reach-v3``, ...)."""
    return tuple(_require("metaworld.env_dict").ALL_V3_ENVIRONMENTS)


def check_tasks(names: tuple[str, ...], field: str) -> None:
    """Fail naming ``field`` and the close matches for any name that is not a Meta-World task."""
    known = all_tasks()
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise MetaWorldSetupError(f"{field}: unknown Meta-World task {name!r}.{hint} Accepted: the "
                                      f"{len(known)} tasks of metaworld ({known[0]}, {known[1]}, ...)")


@dataclass(frozen=True)
class MetaWorldOptions:
    """How a Meta-World set is built (``--metaworld.*``)."""

    tasks: tuple[str, ...] = ()
    """MT1 / ML1: the one task (e.g. reach-v3); custom-mt: the task list; other sets: leave empty."""
    reward_version: str = "v2"
    """Reward function version: v2 (Meta-World+'s default) or v1 (the original benchmark's)."""
    vector: str = "sync"
    """gymnasium vector strategy: sync (in this process) or async (one subprocess per env)."""
    seed: int = 0
    """Seed of the benchmark's task parametrisations (goal positions; ML train / test draws), the same
    for every seed of a run."""
    meta_evals: int = 10
    """ML sets: how many times evaluation samples new test-task parametrisations (metaworld's num_evals)."""

    def check(self, prefix: str = "metaworld.") -> None:
        """Raise `MetaWorldSetupError` naming the first field out of range."""
        if self.reward_version not in REWARD_VERSIONS:
            raise MetaWorldSetupError(f"{prefix}reward_version: {self.reward_version!r} is not one of "
                                      f"{', '.join(REWARD_VERSIONS)}")
        if self.vector not in VECTOR_STRATEGIES:
            raise MetaWorldSetupError(f"{prefix}vector: {self.vector!r} is not one of "
                                      f"{', '.join(VECTOR_STRATEGIES)}")
        if self.meta_evals < 1:
            raise MetaWorldSetupError(f"{prefix}meta_evals: must be >= 1, got {self.meta_evals}")
        check_tasks(self.tasks, f"{prefix}tasks")


class MetaWorldVecEnv:
    """Groups of gymnasium Meta-World vector envs (one env per task each), stepped as one `HostVecEnv`."""

    def __init__(self, spec: EnvSpec, groups: list[Any]):
        self.spec = spec
        self.groups = groups
        self.size = groups[0].num_envs
        self.num_envs = self.size * len(groups)
        self.succeeded = np.zeros(self.num_envs, bool)
        # MT sets: env i of each group runs task i (training statistics split by task); ML sets hide it
        self.task = np.tile(np.arange(self.size), len(groups)) if spec.num_tasks == self.size else None

    def reset(self, seed: int | np.ndarray) -> np.ndarray:
        """Start every env's episode; ``seed`` is one base seed, or one per env."""
        seeds = np.broadcast_to(np.asarray(seed, np.int64), (self.num_envs,))
        self.succeeded[:] = False
        for i, g in enumerate(self.groups):
            reseed(g, seeds[i * self.size:(i + 1) * self.size])
        return np.concatenate([g.reset()[0] for g in self.groups]).astype(np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        actions = np.asarray(actions, np.float64).reshape(len(self.groups), self.size, -1)
        out = [_step(g, a) for g, a in zip(self.groups, actions, strict=True)]
        obs, reward, terminated, truncated, final, success = (np.concatenate(x)
                                                              for x in zip(*out, strict=True))
        done = terminated | truncated
        success |= self.succeeded
        self.succeeded = success & ~done
        info = {"final_obs": final, "success": success}
        return obs, reward, terminated, truncated, info if self.task is None else {**info, "task": self.task}

    def close(self) -> None:
        for g in self.groups:
            g.close()


def reseed(envs: Any, seeds: Any) -> None:
    """Seed each env's generator (task draws at reset, reset noise). metaworld ignores ``reset(seed=...)``
    and seeds only at construction, so the generators are set through the wrappers, per env."""
    envs.set_attr("np_random", [np.random.Generator(np.random.PCG64(int(s) % 2**63)) for s in seeds])


def _step(envs: Any, actions: np.ndarray) -> tuple[np.ndarray, ...]:
    """One step of a gymnasium vector env (same-step autoreset) as arrays: obs, reward, terminated,
    truncated, the observation each step ended on, and success at that step."""
    obs, reward, terminated, truncated, info = envs.step(actions)
    obs = obs.astype(np.float32)
    final, success = obs.copy(), np.asarray(info.get("success", np.zeros(len(obs))), bool)
    if "final_obs" in info:
        ended = np.asarray(info["_final_obs"], bool)
        final[ended] = np.stack(info["final_obs"][ended]).astype(np.float32)
        success = np.where(ended, np.asarray(info["final_info"].get("success", 0.0), bool), success)
    return obs, reward.astype(np.float32), terminated, truncated, final, success


class _Policy:
    """metaworld's evaluation Agent protocol around a plastix policy ``act(obs) -> actions``; it does not
    adapt (zero-shot in the meta-RL protocol)."""

    def __init__(self, act: Callable[[np.ndarray], np.ndarray]):
        self.act = act

    def eval_action(self, observations: np.ndarray) -> np.ndarray:
        return self.act(np.asarray(observations, np.float32))

    def adapt_action(self, observations: np.ndarray) -> tuple[np.ndarray, dict]:
        return self.eval_action(observations), {}

    def reset(self, env_mask: np.ndarray) -> None:
        pass

    def init(self) -> None:
        pass

    def step(self, timestep: Any) -> None:
        pass

    def adapt(self) -> None:
        pass


@dataclass(frozen=True)
class MetaWorldEnv:
    """A registered Meta-World set with its options, `vector` to build batches of it (a host env
    family), and `evaluate`, the benchmark's own evaluation protocol."""

    env_id: str
    options: MetaWorldOptions = MetaWorldOptions()

    def __post_init__(self):
        self.options.check()
        name, tasks = self.set_name, self.options.tasks
        if name in ("MT1", "ML1") and len(tasks) != 1:
            raise MetaWorldSetupError(f"metaworld.tasks: {self.env_id} plays one task; name it, e.g. "
                                      f"--metaworld.tasks reach-v3 (got {list(tasks)})")
        if name == "custom-mt" and not tasks:
            raise MetaWorldSetupError("metaworld.tasks: Meta-World/custom-mt needs the task list, e.g. "
                                      "--metaworld.tasks reach-v3 push-v3")
        if name == "custom-mt" and len(set(tasks)) != len(tasks):
            raise MetaWorldSetupError(f"metaworld.tasks: each task once, got {list(tasks)}")
        if name not in ("MT1", "ML1", "custom-mt") and tasks:
            raise MetaWorldSetupError(f"metaworld.tasks: {self.env_id} fixes its own tasks; leave tasks "
                                      f"empty (got {list(tasks)}); Meta-World/custom-mt takes a list")

    @property
    def set_name(self) -> str:
        return self.env_id.split("/", 1)[1]

    @property
    def meta_rl(self) -> bool:
        """An ML set: task ids are hidden and evaluation is on held-out test tasks."""
        return self.set_name.startswith("ML")

    def _names(self, split: str) -> tuple[str, ...]:
        """The set's task names of ``split`` from metaworld's tables (no benchmark is built: building one
        samples every task's parametrisations, seconds per set)."""
        name, tables = self.set_name, _require("metaworld.env_dict")
        if name in ("MT1", "ML1", "custom-mt"):
            return tuple(self.options.tasks) if split == "train" or name == "ML1" else ()
        if name.startswith("MT"):
            return tuple(getattr(tables, f"{name}_V3")) if split == "train" else ()
        return tuple(getattr(tables, f"{name}_V3")[split])

    @cached_property
    def task_names(self) -> tuple[str, ...]:
        """The training tasks in env order (one env per task in each group)."""
        return self._names("train")

    @cached_property
    def test_task_names(self) -> tuple[str, ...]:
        """ML sets: the held-out test tasks of the meta-RL protocol; () for MT sets."""
        return self._names("test")

    @cached_property
    def spec(self) -> EnvSpec:
        num_tasks = 0 if self.meta_rl else len(self.task_names)
        return EnvSpec(self.env_id, Box(-np.inf, np.inf, (39 + num_tasks,), np.float32),
                       Box(-1.0, 1.0, (4,), np.float32), EPISODE_STEPS, False, num_tasks=num_tasks,
                       task_names=self.task_names)

    def _group(self, split: str = "train") -> Any:
        """One gymnasium vector env holding one env per task of ``split``."""
        gym = _require("gymnasium")
        _require("metaworld")  # registers the Meta-World/ ids with gymnasium
        with warnings.catch_warnings():  # gymnasium's checker warns of bounds metaworld leaves equal
            warnings.simplefilter("ignore")
            return self._make_group(gym, split)

    def _make_group(self, gym: Any, split: str) -> Any:
        name, o = self.set_name, self.options
        common = dict(vector_strategy=o.vector, seed=o.seed, reward_function_version=o.reward_version)
        if name == "MT1":
            return gym.make_vec("Meta-World/MT1", env_name=o.tasks[0], use_one_hot=True, env_id=0, **common)
        if name == "custom-mt":
            return gym.make_vec("Meta-World/custom-mt-envs", envs_list=list(o.tasks), use_one_hot=True,
                                **common)
        if not self.meta_rl:
            return gym.make_vec(f"Meta-World/{name}", use_one_hot=True, **common)
        names = self.task_names if split == "train" else self.test_task_names
        extra = {"env_name": o.tasks[0]} if name == "ML1" else {}
        envs = gym.make_vec(f"Meta-World/{name}-{split}", meta_batch_size=len(names), **extra, **common)
        if split == "train":  # a new parametrisation of the env's task class at every reset
            envs.call("toggle_sample_tasks_on_reset", True)
        return envs

    def vector(self, num_envs: int) -> MetaWorldVecEnv:
        """``num_envs`` envs (a multiple of the task count): env ``j`` plays task ``j % tasks``."""
        tasks = len(self.task_names)
        if num_envs % tasks:
            raise MetaWorldSetupError(f"num_envs: {self.env_id} has {tasks} tasks, one env each per group; "
                                      f"{num_envs} envs is not a multiple of {tasks}")
        return MetaWorldVecEnv(self.spec, [self._group() for _ in range(num_envs // tasks)])

    @cached_property
    def _eval_envs(self) -> Any:
        return self._group("test" if self.meta_rl else "train")

    def evaluate(self, act: Callable[[np.ndarray], np.ndarray], episodes: int, seed: int) -> dict[str, Any]:
        """The benchmark's evaluation of the policy ``act`` (observations -> actions of its env batch):
        per-task success rates and mean returns (``{"success": {task: rate}, "return": {task: mean}}``;
        ML sets: on the test tasks, one overall return)."""
        evaluation = _require("metaworld.evaluation")
        envs = self._eval_envs
        reseed(envs, [seed + j for j in range(envs.num_envs)])
        agent = _Policy(act)
        if self.meta_rl:
            _, mean_return, success = evaluation.metalearning_evaluation(
                agent, envs, num_evals=self.options.meta_evals, adaptation_steps=1, adaptation_episodes=0,
                evaluation_episodes=episodes)
            return {"success": {k: float(success[k]) for k in self.test_task_names},
                    "return": {"all": float(mean_return)}}
        _, _, success, returns = evaluation.evaluation(agent, envs, num_episodes=episodes)
        return {"success": {k: float(success[k]) for k in self.task_names},
                "return": {k: float(np.mean(returns[k])) for k in self.task_names}}

    def eval_num_envs(self) -> int:
        """The batch `evaluate` hands the policy."""
        return len(self.test_task_names if self.meta_rl else self.task_names)

    def close(self) -> None:
        if "_eval_envs" in self.__dict__:
            self.__dict__.pop("_eval_envs").close()


def register_all() -> None:
    """Register ``Meta-World/<set>`` for every set (cheap: nothing is imported until an env is built)."""
    for name in SETS:
        register(f"Meta-World/{name}", MetaWorldEnv)
