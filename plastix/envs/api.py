"""The environment contract: spaces, the functional JAX `Env` base, the host-env protocol, the registry.

JAX envs are pure and gymnax-shaped: ``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)`` for ONE
environment; callers ``vmap`` them. ``step`` auto-resets: when an episode ends it returns the first
observation and state of the next episode, while ``reward``/``terminated``/``truncated`` describe the
transition that ended it and ``info["final_obs"]`` holds the observation it ended on (needed to
bootstrap a truncated episode).

Host envs (ALE, Meta-World, MuJoCo) are already batched and stepped outside ``jit``; they follow
`HostVecEnv`, numpy in and out, with the same field meanings.
"""

from __future__ import annotations

import abc
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np


# --------------------------------------------------------------------------- spaces
@dataclass(frozen=True)
class Discrete:
    """``n`` actions or values, ``0 .. n-1``."""

    n: int
    dtype: Any = jnp.int32
    kind: ClassVar[str] = "discrete"

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=self.dtype)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return x.shape == () and np.issubdtype(x.dtype, np.integer) and 0 <= int(x) < self.n


@dataclass(frozen=True)
class Box:
    """A bounded array space; ``low``/``high`` are scalars broadcast over ``shape``."""

    low: float
    high: float
    shape: tuple[int, ...]
    dtype: Any = jnp.float32
    kind: ClassVar[str] = "continuous"

    def sample(self, key: jax.Array) -> jax.Array:
        if jnp.issubdtype(self.dtype, jnp.integer):
            return jax.random.randint(
                key, self.shape, int(self.low), int(self.high) + 1, dtype=jnp.int32
            ).astype(self.dtype)
        return jax.random.uniform(key, self.shape, self.dtype, self.low, self.high)

    def contains(self, x: Any) -> bool:
        x = np.asarray(x)
        return x.shape == tuple(self.shape) and bool(np.all(x >= self.low) & np.all(x <= self.high))


@dataclass(frozen=True)
class DictSpace:
    """A mapping of named sub-spaces (observations with several fields)."""

    spaces: tuple[tuple[str, Any], ...]
    kind: ClassVar[str] = "dict"

    def __getitem__(self, name: str) -> Any:
        return dict(self.spaces)[name]

    def sample(self, key: jax.Array) -> dict[str, jax.Array]:
        keys = jax.random.split(key, len(self.spaces))
        return {name: sp.sample(k) for (name, sp), k in zip(self.spaces, keys, strict=True)}


Space = Discrete | Box | DictSpace


@dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about an env before it sees one step."""

    env_id: str
    observation_space: Space
    action_space: Space
    max_steps: int
    on_device: bool  # True: pure JAX, runs under jit; False: host-stepped (numpy)
    frame_stack: int = 0  # > 1: observations are [..., k] stacks of frames, newest last (Atari)
    frame_padding: str = "repeat"  # how the env fills a new episode's stack: repeat its first frame, or zero
    num_tasks: int = 0  # > 0: observations end with a one-hot task id of this many entries (multi-task)
    task_names: tuple[str, ...] = ()  # the tasks, in one-hot order (multi-task and meta-RL sets)


def task_ids(obs: jax.Array, spec: EnvSpec) -> jax.Array | None:
    """Task ids from observations whose last axis ends with a task one-hot (`EnvSpec.num_tasks`); for
    images the one-hot is constant over the image, read at its first pixel. None without task ids."""
    k = spec.num_tasks
    if not k:
        return None
    rank = len(spec.observation_space.shape)
    return jnp.argmax(obs[(...,) + (0,) * (rank - 1) + (slice(-k, None),)], -1)


# --------------------------------------------------------------------------- JAX envs
class Env(abc.ABC):
    """Base class of pure JAX environments; subclasses implement `reset_env`, `step_env`, `observe`."""

    env_id: str

    @property
    def default_params(self) -> Any:
        return None

    @property
    @abc.abstractmethod
    def observation_space(self) -> Space:
        """What `observe` returns."""

    @property
    @abc.abstractmethod
    def action_space(self) -> Space:
        """What `step` accepts."""

    @property
    @abc.abstractmethod
    def max_steps(self) -> int:
        """Episode length at which `step` truncates."""

    @property
    def spec(self) -> EnvSpec:
        return EnvSpec(
            self.env_id, self.observation_space, self.action_space, self.max_steps, True
        )

    @abc.abstractmethod
    def reset_env(self, key: jax.Array, params: Any) -> Any:
        """Sample the first state of an episode."""

    @abc.abstractmethod
    def step_env(
        self, key: jax.Array, state: Any, action: jax.Array, params: Any
    ) -> tuple[Any, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One transition without auto-reset: (state, reward, terminated, truncated, info)."""

    @abc.abstractmethod
    def observe(self, state: Any, params: Any) -> Any:
        """The agent's observation of ``state``."""

    def reset(self, key: jax.Array, params: Any = None) -> tuple[Any, Any]:
        params = self.default_params if params is None else params
        state = self.reset_env(key, params)
        return self.observe(state, params), state

    def step(
        self, key: jax.Array, state: Any, action: jax.Array, params: Any = None
    ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        next_state, reward, terminated, truncated, info = self.step_env(
            key_step, state, action, params
        )
        return auto_reset(self, params, next_state, self.reset_env(key_reset, params), reward, terminated,
                          truncated, info)


    def step_batch(
        self, keys: jax.Array, state: Any, action: jax.Array, params: Any = None, final_obs: str = "done"
    ) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict[str, Any]]:
        """`step` for a batch (``keys [N]``, states and actions with a leading N axis), the same result as
        ``vmap(step)``; the training loop steps through this, so a wrapper may share work across the
        batch (`first_states`: `OptimisticReset`).

        ``final_obs``: where ``info["final_obs"]`` must be the observation an episode ended on: ``done``
        (every ended episode, as `step`), ``truncated`` (only truncated ones, the other rows being the
        next observation: what PPO's bootstrap reads, observed only on steps that truncate) or ``none``."""
        if final_obs not in FINAL_OBS:
            raise ValueError(f"final_obs: {final_obs!r} is not one of {', '.join(FINAL_OBS)}")
        if type(self).step is not Env.step:  # an env with its own step keeps it
            return jax.vmap(self.step, in_axes=(0, 0, 0, None))(keys, state, action, params)
        params = self.default_params if params is None else params
        k_step, k_reset = jnp.moveaxis(jax.vmap(jax.random.split)(keys), 1, 0)
        next_state, reward, terminated, truncated, info = jax.vmap(
            self.step_env, in_axes=(0, 0, 0, None))(k_step, state, action, params)
        done = terminated | truncated
        state = where_done(done, self.first_states(k_reset, done, params), next_state)
        if final_obs == "done":
            obs, final = _observe_both(self, state, next_state, params)
        else:
            observe = jax.vmap(self.observe, in_axes=(0, None))
            obs = observe(state, params)
            final = obs if final_obs == "none" else jax.lax.cond(
                over_seeds(truncated.any(), jax.lax.pmax), lambda: observe(next_state, params), lambda: obs)
        return obs, state, reward.astype(jnp.float32), terminated, truncated, {**info, "final_obs": final}

    def first_states(self, keys: jax.Array, done: jax.Array, params: Any) -> Any:
        """The states ``[N]`` the envs that ended (``done``) continue from: one fresh per env."""
        return jax.vmap(self.reset_env, in_axes=(0, None))(keys, params)


FINAL_OBS = ("done", "truncated", "none")
SEED_AXIS = "seed"  # the axis name the training loops vmap over seeds with


def over_seeds(x: jax.Array, reduce: Callable = jax.lax.pmax) -> jax.Array:
    """``x`` reduced over the seeds the training loop vmaps over (``reduce``: ``jax.lax.pmax`` /
    ``psum``), unchanged outside that vmap. A ``lax.cond`` whose predicate varies over a vmapped axis
    becomes a select that runs both sides; on this one predicate for all seeds it stays a branch."""
    try:
        return reduce(x, SEED_AXIS)
    except NameError:  # not traced under the loop's vmap over seeds
        return x


def where_done(done: jax.Array, reset_state: Any, next_state: Any) -> Any:
    """The states the envs continue from: ``reset_state`` where the episode ended (``done``: one env's
    scalar or a batch's ``[N]``), else ``next_state``."""
    return jax.tree.map(lambda a, b: jnp.where(done.reshape(done.shape + (1,) * (b.ndim - done.ndim)), a, b),
                        reset_state, next_state)


def auto_reset(env: Env, params: Any, next_state: Any, reset_state: Any, reward: jax.Array,
               terminated: jax.Array, truncated: jax.Array, info: dict[str, Any],
               select_observation: bool = False) -> tuple[Any, Any, jax.Array, jax.Array, jax.Array, dict]:
    """`Env.step`'s result from one env's transition and the state a new episode would start from, the
    auto-reset every env's `step` shares: continue from ``reset_state`` where the episode ended, and keep
    the observation it ended on in ``info["final_obs"]`` (a second observation, which XLA drops when
    nothing reads it). ``select_observation``: observe both states and select, for envs whose
    observation is cheaper than selecting their state's fields (MinAtar's packed grids)."""
    done = jnp.logical_or(terminated, truncated)
    state = where_done(done, reset_state, next_state)
    final = env.observe(next_state, params)
    if select_observation:
        obs = jax.tree.map(lambda r, f: jnp.where(done, r, f), env.observe(reset_state, params), final)
    else:
        obs = env.observe(state, params)
    return obs, state, reward.astype(jnp.float32), terminated, truncated, {**info, "final_obs": final}


def _observe_both(env: Env, state: Any, next_state: Any, params: Any) -> tuple[Any, Any]:
    """Observations of two batches of states (the one the agent continues from, the one an episode ended
    on) from one vmapped call over both: on a CPU a small batch costs what its ops cost, not its size,
    so one call over 2N is nearly half of two over N."""
    n = jax.tree.leaves(state)[0].shape[0]
    both = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), state, next_state)
    obs = jax.vmap(env.observe, in_axes=(0, None))(both, params)
    return jax.tree.map(lambda o: o[:n], obs), jax.tree.map(lambda o: o[n:], obs)


# --------------------------------------------------------------------------- host envs
@runtime_checkable
class HostVecEnv(Protocol):
    """A batched env stepped on the host (numpy), auto-resetting like `Env.step`.

    ``step`` returns ``(obs, reward, terminated, truncated, info)`` with a leading ``num_envs`` axis
    and ``info["final_obs"]`` set where an episode ended. Optional ``info`` entries: ``episode_end``
    (the episode that statistics count ended, when a termination is not one, as a lost life in Atari),
    ``score`` (the unclipped reward, for statistics), ``success``, ``task`` (each env's task index in
    ``spec.task_names``: statistics per task). Envs that can save their state have
    ``snapshot() -> dict`` and ``restore(dict)``.
    """

    num_envs: int
    spec: EnvSpec

    def reset(self, seed: int) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- registry
class UnknownEnvError(ValueError):
    """Raised for an env id that is not registered; the message lists close matches."""


_REGISTRY: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}


def register(env_id: str, factory: Callable[..., Any], **defaults: Any) -> None:
    """Register ``factory(**defaults, **overrides)`` under ``env_id``."""
    if env_id in _REGISTRY:
        raise ValueError(f"env id {env_id!r} is already registered")
    _REGISTRY[env_id] = (factory, defaults)


def list_envs(prefix: str = "") -> list[str]:
    """Every registered env id (optionally only those starting with ``prefix``), sorted."""
    return sorted(e for e in _REGISTRY if e.startswith(prefix))


def check_env_id(env_id: Any) -> None:
    """Fail with close matches when ``env_id`` is not registered."""
    if not isinstance(env_id, str) or env_id not in _REGISTRY:
        close = difflib.get_close_matches(str(env_id), list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownEnvError(
            f"env: unknown env id {env_id!r}.{hint} "
            f"`plastix.envs.list_envs()` lists all {len(_REGISTRY)} ids."
        )


def make(env_id: str, **kwargs: Any) -> Any:
    """Build a registered environment; ``kwargs`` override the id's defaults."""
    check_env_id(env_id)
    factory, defaults = _REGISTRY[env_id]
    return factory(env_id=env_id, **{**defaults, **kwargs})
