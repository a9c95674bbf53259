"""Run configuration: frozen dataclasses, recipes, and validation that fails before any compilation."""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from plastix.agents import AGENTS, DQNConfig, PPOConfig, SACConfig
from plastix.envs import Env, check_env_id, make
from plastix.envs.atari import AtariOptions
from plastix.envs.grid.taskmix import TASKMIX_ID, TaskMixOptions
from plastix.envs.metaworld import MetaWorldOptions
from plastix.envs.minatar import MINATAR_TASKMIX_ID, MinAtarOptions
from plastix.envs.optimistic_reset import OptimisticReset, ResetPoolError
from plastix.nets.build import NetConfig, check
from plastix.plasticity.hook import PlasticityConfig
from plastix.plasticity.hook import check as check_plasticity
from plastix.run.logging import WandbOptions, check_wandb

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"


class ConfigError(ValueError):
    """A configuration value is missing, of the wrong type, or incompatible with another."""


@dataclass(frozen=True)
class RunConfig:
    """One training run: env x agent x budget x seeds, and where its outputs go."""

    env: str = "MiniGrid-DoorKey-5x5-v0"
    """Registered env id (``plastix envs list``)."""
    agent: str = "ppo"
    """ppo, dqn or sac (plastix.agents.AGENTS); selects the config section that applies (--ppo.*, --dqn.*,
    --sac.*)."""
    total_steps: int = 1_000_000
    """Environment steps per seed, rounded up to one whole iteration of the agent (PPO: a rollout of
    num_envs x num_steps; DQN: one step of each env)."""
    seeds: int = 4
    """Number of independent seeds, trained together (vmapped, sharded over devices)."""
    seed: int = 0
    """The run's seed; its seed i uses fold_in(PRNGKey(seed), i), so runs of different seeds share no
    stream."""
    observation: str = "egocentric"
    """Gridworld observation: egocentric (MiniGrid's 7x7 view), full (the whole grid), onehot,
    full_onehot, rgb (the view as pixels) or rgb_full (the whole grid as pixels)."""
    reset_ratio: int = 1
    """JAX envs: each training step samples ceil(num_envs / reset_ratio) first states, taken in order by
    the envs whose episode ended (optimistic reset: every start keeps the env's own distribution; envs
    ending in the same step share one only when more end than were sampled); 1: every env samples its
    own (exact). Evaluation is always exact."""
    atari: AtariOptions = field(default_factory=AtariOptions)
    """How ALE / CALE games are played (sticky actions, life loss, reward clipping, action set); only
    for ALE/ and CALE/ ids."""
    taskmix: TaskMixOptions = field(default_factory=TaskMixOptions)
    """The tasks of TaskMix/MiniGrid-v0 or TaskMix/MinAtar-v0 (multi-task or continual) and whether the
    observation holds the task id; only for those ids."""
    metaworld: MetaWorldOptions = field(default_factory=MetaWorldOptions)
    """How Meta-World sets are built (task list, reward version, vector strategy, benchmark seed); only
    for Meta-World/ ids."""
    minatar: MinAtarOptions = field(default_factory=MinAtarOptions)
    """How MinAtar games are played (sticky actions, difficulty ramping, a step cap); only for MinAtar/ ids
    and TaskMix/MinAtar-v0."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyper-parameters (agent ppo)."""
    dqn: DQNConfig = field(default_factory=DQNConfig)
    """DQN-family hyper-parameters (agent dqn): double, dueling, n-step, C51, NoisyNet, PER, DER, DrQ(eps)."""
    sac: SACConfig = field(default_factory=SACConfig)
    """SAC hyper-parameters (agent sac), with its actor and critic networks (--sac.actor.*,
    --sac.critic.*)."""
    net: NetConfig = field(default_factory=NetConfig)
    """The network of PPO and DQN: encoder, bottleneck, dense stack, mixture of experts, sharing (SAC sets
    its two networks in its own section)."""
    plasticity: PlasticityConfig = field(default_factory=PlasticityConfig)
    """Neuron-activity diagnostics (dormant, GraMa, srank) and resets (ReDo, ReGraMa)."""
    log_every: int = 65_536
    """Environment steps per seed between log lines, checkpoints and progress updates."""
    eval_every: int = 0
    """Environment steps per seed between evaluations logged beside training returns (at the first log
    line at or after each multiple); 0: only the final evaluation."""
    eval_episodes: int = 64
    """Episodes per seed in each evaluation (the agent's evaluation policy: PPO samples, DQN eps_eval)."""
    eval_max_steps: int = 0
    """Evaluation episodes are cut after this many steps (their return so far counts); 0: the env's
    own limit (Atari: 27,000 agent steps)."""
    wandb: WandbOptions = field(default_factory=WandbOptions)
    """Weights & Biases logging (off unless --wandb.project names one; the wandb extra)."""
    out_dir: str = "runs"
    """Directory that holds run directories."""
    name: str = ""
    """Run directory name under out_dir; default: <env>_<agent>_<timestamp>."""
    progress: bool = True
    """Show a progress bar."""


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` matches a (simple) field annotation: scalars, tuples, unions, dataclasses."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if origin is tuple:
        args = typing.get_args(annotation)
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_type_ok(v, args[0]) for v in value)
        return len(args) == len(value) and all(map(_type_ok, value, args))
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _check_types(obj: Any, prefix: str = "") -> None:
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, name = getattr(obj, f.name), f"{prefix}{f.name}"
        if dataclasses.is_dataclass(hints[f.name]):
            if not isinstance(value, hints[f.name]):
                raise ConfigError(f"{name}: expected a {hints[f.name].__name__}, got {value!r}")
            _check_types(value, name + ".")
        elif not _type_ok(value, hints[f.name]):
            finite = " (a finite number)" if isinstance(value, float) and not math.isfinite(value) else ""
            raise ConfigError(
                f"{name}: expected {getattr(hints[f.name], '__name__', hints[f.name])}{finite}, "
                f"got {type(value).__name__} {value!r}"
            )


def _positive(obj: Any, names: tuple[str, ...], prefix: str) -> None:
    for n in names:
        if getattr(obj, n) <= 0:
            raise ConfigError(f"{prefix}{n}: must be positive, got {getattr(obj, n)!r}")


def validate(config: RunConfig) -> RunConfig:
    """Check types, ranges and compatibility of ``config``; raises `ConfigError` naming the field."""
    _check_types(config)
    _positive(config, ("total_steps", "seeds", "log_every", "eval_episodes"), "")
    if config.agent not in AGENTS:
        close = difflib.get_close_matches(config.agent, list(AGENTS), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"agent: unknown agent {config.agent!r}{hint}; accepted: {', '.join(AGENTS)}"
        )
    try:
        check_env_id(config.env)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if config.eval_max_steps < 0:
        raise ConfigError(f"eval_max_steps: must be >= 0, got {config.eval_max_steps}")
    if config.eval_every < 0:
        raise ConfigError(f"eval_every: must be >= 0, got {config.eval_every}")
    try:
        check_wandb(config.wandb)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for other in AGENTS:
        if other != config.agent and getattr(config, other) != getattr(RunConfig(), other):
            raise ConfigError(f"{other}: the {other} section applies to agent {other}, but this run's agent "
                              f"is {config.agent}; set --{config.agent}.* instead, or leave {other} at its "
                              f"defaults")
    env = build_env(config)
    spec = env.spec
    if config.eval_max_steps and hasattr(env, "evaluate"):
        raise ConfigError(f"eval_max_steps: {config.env} is evaluated by its benchmark's own protocol, whose "
                          f"episodes have their own length; leave eval_max_steps 0")
    agent_cls = AGENTS[config.agent]
    kinds = agent_cls.action_kinds
    if spec.action_space.kind not in kinds:
        other = [a for a, cls in AGENTS.items() if spec.action_space.kind in cls.action_kinds]
        hint = f"; agents for it: {', '.join(other)}" if other else ""
        if config.env.startswith(("ALE/", "CALE/")):
            twin = config.env.replace("CALE/", "ALE/") if config.env.startswith("CALE/") else "C" + config.env
            kind = "discrete" if twin.startswith("ALE/") else "continuous"
            hint += f"; {twin} is the same game with {kind} actions"
        raise ConfigError(
            f"agent: {config.agent} supports {', '.join(kinds)} action spaces, but env "
            f"{config.env} has a {spec.action_space.kind} action space{hint}"
        )
    num_envs = getattr(agent_config(config), "num_envs", 0)
    every = config.taskmix.switch_every
    if every and every * num_envs >= config.total_steps:
        raise ConfigError(f"taskmix.switch_every: the task would switch after {every:,} steps of each env, "
                          f"but the budget gives each of the {num_envs} envs "
                          f"{config.total_steps // num_envs:,} steps (total_steps {config.total_steps:,}); "
                          f"the schedule never switches")
    if spec.task_names and not spec.on_device and num_envs % len(spec.task_names):
        raise ConfigError(f"{config.agent}.num_envs: {config.env} runs one env per task in each group of "
                          f"{len(spec.task_names)}; {num_envs} is not a multiple of {len(spec.task_names)}")
    try:
        agent_cls.check(agent_config(config), spec, config.total_steps)
        check(config.net)
        check_plasticity(config.plasticity)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if config.agent == "ppo" and config.ppo.critic_epochs not in (0, config.ppo.update_epochs) \
            and config.net.shared != "none":
        raise ConfigError(f"ppo.critic_epochs: {config.ppo.critic_epochs} critic epochs against "
                          f"{config.ppo.update_epochs} actor epochs need separate networks, but net.shared "
                          f"is {config.net.shared!r}; set net.shared none, or critic_epochs 0")
    _check_net_reads(config)
    if config.agent == "sac" and config.net != NetConfig():
        raise ConfigError("net: SAC's networks are set in its own section (sac.actor.*, sac.critic.*); "
                          "leave net at its defaults")
    nets = {"net": config.net} if config.agent != "sac" else {"sac.actor": config.sac.actor,
                                                               "sac.critic": config.sac.critic}
    for name, net in nets.items():
        if net.moe.kind != "task":
            continue
        if not spec.num_tasks:
            sets = "; Meta-World's MT sets (Meta-World/MT10, ...) do" \
                if config.env.startswith("Meta-World/") else ""
            raise ConfigError(f"{name}.moe.kind: task routing needs task ids, which {config.env} does not "
                              f"provide{sets}; use soft, topk or expert_choice")
        if net.moe.experts != spec.num_tasks:
            raise ConfigError(f"{name}.moe.experts: task routing gives each task its own expert; "
                              f"{config.env} has {spec.num_tasks} tasks, so set {name}.moe.experts "
                              f"{spec.num_tasks} (got {net.moe.experts})")
    return config


def _check_net_reads(config: RunConfig) -> None:
    """Refuse network settings the selected agent has no use for: actor-critic sharing and expert
    placement are PPO's (DQN has one network; SAC's actor and critic are separate networks)."""
    if config.agent == "ppo":
        return
    nets = {"net": config.net} if config.agent != "sac" else {"sac.actor": config.sac.actor,
                                                               "sac.critic": config.sac.critic}
    default = NetConfig()
    for name, net in nets.items():
        if config.agent != "sac" and net.shared != default.shared:
            raise ConfigError(f"{name}.shared: actor-critic sharing is for agent ppo; {config.agent} has one "
                              f"network; leave it {default.shared!r}")
        if net.moe.placement != default.moe.placement:
            raise ConfigError(f"{name}.moe.placement: experts in the actor, the critic or both is for agent "
                              f"ppo; {config.agent} places them with its own network section; leave it "
                              f"{default.moe.placement!r}")
        if config.agent == "dqn" and net.moe.kind != "none" and net.moe.position != "middle":
            raise ConfigError(f"{name}.moe.position: value-based agents take experts in the middle position, "
                              f"got {net.moe.position!r}")


def agent_config(config: RunConfig) -> Any:
    """The selected agent's config section (``config.<agent>``)."""
    return getattr(config, config.agent)


@dataclass(frozen=True)
class Plan:
    """How a step budget splits into iterations (the agent's unit of work) and logging chunks; the
    last chunk is shorter when the chunk size does not divide the iterations."""

    batch: int  # env steps per iteration per seed
    iterations: int
    per_chunk: int

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.iterations / self.per_chunk)

    @property
    def total_steps(self) -> int:
        return self.iterations * self.batch

    def chunk_iterations(self, chunk: int) -> int:
        return min(self.per_chunk, self.iterations - chunk * self.per_chunk)

    def steps_after(self, chunk: int) -> int:
        """Env steps per seed done when chunk ``chunk`` (0-based) has ended."""
        return min((chunk + 1) * self.per_chunk, self.iterations) * self.batch


def plan(config: RunConfig) -> Plan:
    """The budget rounds up to one whole iteration, never to a whole chunk."""
    batch = AGENTS[config.agent].env_steps(agent_config(config))
    iterations = math.ceil(config.total_steps / batch)
    return Plan(batch, iterations, min(iterations, max(1, round(config.log_every / batch))))


def build_env(config: RunConfig) -> Any:
    """The env ``config`` names, with its observation option (gridworlds take one), its ALE or its
    Meta-World options, behind an optimistic reset when ``reset_ratio`` > 1."""
    env = _named_env(config)
    if config.reset_ratio == 1:
        return env
    if not isinstance(env, Env):
        raise ConfigError(f"reset_ratio: {config.env} is stepped on the host and resets each env itself; "
                          f"the optimistic reset is for JAX envs; leave reset_ratio 1")
    try:
        return OptimisticReset(env, config.reset_ratio)
    except ResetPoolError as err:
        raise ConfigError(str(err)) from None


def _named_env(config: RunConfig) -> Any:
    families = {"atari": (("ALE/", "CALE/"), AtariOptions(), "the ALE options"),
                "metaworld": (("Meta-World/",), MetaWorldOptions(), "the Meta-World options"),
                "taskmix": ((TASKMIX_ID, MINATAR_TASKMIX_ID), TaskMixOptions(), "the task-mix options"),
                "minatar": (("MinAtar/", MINATAR_TASKMIX_ID), MinAtarOptions(), "the MinAtar options")}
    builder = None  # the first family whose ids match builds the env (TaskMix/MinAtar-v0: the task mix)
    for section, (prefixes, default, what) in families.items():
        if config.env.startswith(prefixes):
            builder = builder or section
        elif getattr(config, section) != default:
            raise ConfigError(f"{section}: {what} apply to {' and '.join(prefixes)} ids, not {config.env}; "
                              f"leave them at their defaults")
    if builder:
        if config.env != TASKMIX_ID and config.observation != RunConfig.observation:
            raise ConfigError(f"observation: {config.env} has no observation option (gridworlds have); "
                              f"leave the default")
        extra = {"observation": config.observation} if config.env == TASKMIX_ID else \
            {"minatar": config.minatar} if config.env == MINATAR_TASKMIX_ID else {}
        try:
            return make(config.env, options=getattr(config, builder), **extra)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    if config.observation == RunConfig.observation:
        return make(config.env)
    try:
        return make(config.env, observation=config.observation)
    except TypeError:
        raise ConfigError(
            f"observation: env {config.env} has no observation option; leave the default"
        ) from None
    except ValueError as err:
        raise ConfigError(str(err)) from None


# --------------------------------------------------------------------------- dict / YAML
def to_dict(config: RunConfig) -> dict[str, Any]:
    """A plain dict (tuples as lists) for YAML."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(config))


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(
                f"{prefix}{key}: unknown field{hint}; accepted: {', '.join(names)}"
            )
        if dataclasses.is_dataclass(hints[key]):
            value = _from_dict(hints[key], value, f"{prefix}{key}.")
        elif typing.get_origin(hints[key]) is tuple and isinstance(value, list):
            value = tuple(value)
        elif hints[key] is float and isinstance(value, str):
            try:  # YAML 1.1 reads 1e-4 (no dot) as a string
                value = float(value)
            except ValueError:
                pass  # left for validation to report
        kwargs[key] = value
    return cls(**kwargs)


def from_dict(data: dict[str, Any]) -> RunConfig:
    """A `RunConfig` from a (possibly partial) mapping; unknown keys are errors."""
    return _from_dict(RunConfig, data)


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_description(name: str) -> str:
    """The first sentence of the comment that opens ``recipes/<name>.yaml``."""
    lines = []
    for line in (RECIPES_DIR / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(lines).split(". ")[0].rstrip(".")


def recipe_path(name_or_path: str) -> Path:
    """A preset's file (``recipes/<name>.yaml``), or the run-config YAML at that path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"recipe: no such file {name_or_path!r}")
        return path
    path = RECIPES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        close = difflib.get_close_matches(name_or_path, list_recipes(), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(f"recipe: unknown recipe {name_or_path!r}{hint}; accepted: a YAML path or one of "
                          f"{', '.join(list_recipes())}")
    return path


def _recipe_dict(name_or_path: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """A recipe's mapping with its ``base`` recipe (if it names one) merged under it, section by section."""
    if name_or_path in seen:
        raise ConfigError(f"recipe: {name_or_path!r} is its own base ({' -> '.join(seen + (name_or_path,))})")
    data = _read_mapping(recipe_path(name_or_path))
    base = data.pop("base", None)
    if base is None:
        return data

    def merge(under: dict, over: dict) -> dict:
        return {**under, **{k: merge(under[k], v) if isinstance(v, dict) and isinstance(under.get(k), dict)
                            else v for k, v in over.items()}}

    return merge(_recipe_dict(base, seen + (name_or_path,)), data)


def load_recipe(name_or_path: str) -> RunConfig:
    """A preset (``plastix recipes``) or a run-config YAML file as a config; fields it omits keep their
    defaults (or its ``base`` recipe's values) and unknown keys are errors naming the key."""
    return from_dict(_recipe_dict(name_or_path))


def _read_mapping(path: Path) -> dict[str, Any]:
    """A YAML file's mapping; a syntax error or another kind of document is one `ConfigError` line
    naming the file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at} ({getattr(err, 'problem', None) or err})") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config fields, got a {type(data).__name__}")
    return data


def save_yaml(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def load_yaml(path: Path) -> RunConfig:
    """A run's ``config.yaml`` as a config; unknown keys and bad YAML are errors naming the file."""
    try:
        return from_dict(_read_mapping(path))
    except ConfigError as err:
        message = str(err)
        raise ConfigError(message if message.startswith(str(path)) else f"{path}: {message}") from None
