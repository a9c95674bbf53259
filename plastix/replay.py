"""Device replay: a ring buffer of env steps that lives in the training loop's carry (so a killed run
resumes with its replay, bit for bit), with uniform or prioritised sampling and n-step returns.

Storage is time-major: row ``t`` holds one step of each of the ``N`` envs of a seed, so an env's
successive steps sit in successive rows and n-step windows are plain gathers. Two storage modes:

- ``full`` (default): each row keeps the observation and the observation the step ended on
  (``next_obs``: the terminal one where an episode ended, before the auto-reset). n-step returns are
  cut at terminations (no bootstrap) and bootstrapped at truncations from the final observation.
- ``frames`` (``frame_stack = k > 1``; observations are ``[..., k]`` stacks of single-channel frames,
  newest last, as Atari's are): each row keeps only the newest frame, so every frame is stored once
  (1M steps of 84x84 frames take 7 GB instead of 56). Stacks are rebuilt at sampling from the rows of
  the same episode, padded at the episode start by repeating its first frame (gymnasium's
  ``FrameStackObservation`` default) or with zeros. The bootstrap stack is the next row's, so a window
  ending in a truncation is cut like a termination, as Dopamine's replay does.

Prioritised replay (Schaul et al. 2016): sampling probability ``p_i^alpha / sum_j p_j^alpha``,
stratified over the batch like Dopamine's sum tree; new steps enter at the largest priority seen so
far; importance weights ``(M P(i))^-beta`` normalised by the batch maximum (M = sampleable steps).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

PADDINGS = ("repeat", "zero")


@struct.dataclass
class ReplayState:
    """The buffer of one seed: ``data`` leaves are ``[rows, num_envs, ...]``."""

    data: dict[str, jax.Array]
    priority: jax.Array  # [rows, num_envs]
    max_priority: jax.Array  # scalar
    pos: jax.Array  # next row to write
    size: jax.Array  # rows written (at most rows)


@dataclass(frozen=True)
class Replay:
    """A replay buffer's shape and rules; its methods are pure and jit-able."""

    capacity: int  # transitions (rounded down to whole rows of num_envs)
    num_envs: int
    n_step: int = 1
    gamma: float = 0.99
    prioritized: bool = False
    alpha: float = 0.5
    frame_stack: int = 0
    padding: str = "repeat"
    stratified: bool = False  # uniform sampling takes batch / num_envs samples of each env (multi-task)

    @property
    def rows(self) -> int:
        return self.capacity // self.num_envs

    @property
    def frames(self) -> bool:
        return self.frame_stack > 1

    @property
    def lookahead(self) -> int:
        """Rows a sample needs from its own row on (the bootstrap stack is the next row's in frames mode)."""
        return self.n_step + 1 if self.frames else self.n_step

    @property
    def history(self) -> int:
        """Older rows a sample's stack reads."""
        return self.frame_stack - 1 if self.frames else 0

    @property
    def min_rows(self) -> int:
        """Rows needed before anything can be sampled."""
        return self.lookahead + self.history

    def init(self, obs: jax.Array, action: jax.Array) -> ReplayState:
        """An empty buffer for single (unbatched) ``obs`` and ``action`` examples."""
        rows, n = self.rows, self.num_envs
        zeros = lambda x: jnp.zeros((rows, n) + x.shape, x.dtype)  # noqa: E731
        obs = jnp.asarray(obs)
        data = {"action": zeros(jnp.asarray(action)), "reward": jnp.zeros((rows, n), jnp.float32),
                "terminated": jnp.zeros((rows, n), bool), "truncated": jnp.zeros((rows, n), bool)}
        if self.frames:
            data["frame"] = zeros(obs[..., -1])
        else:
            data["obs"] = zeros(obs)
            data["next_obs"] = zeros(obs)
        return ReplayState(data, jnp.zeros((rows, n), jnp.float32), jnp.ones((), jnp.float32),
                           jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))

    def add(self, state: ReplayState, obs, action, reward, terminated, truncated, next_obs) -> ReplayState:
        """Write one step of every env (``[num_envs, ...]`` each) at the current row."""
        step = {"action": action, "reward": reward.astype(jnp.float32), "terminated": terminated,
                "truncated": truncated}
        if self.frames:
            step["frame"] = obs[..., -1]
        else:
            step["obs"], step["next_obs"] = obs, next_obs
        data = {k: state.data[k].at[state.pos].set(v.astype(state.data[k].dtype)) for k, v in step.items()}
        priority = state.priority.at[state.pos].set(state.max_priority)
        return state.replace(data=data, priority=priority, pos=(state.pos + 1) % self.rows,
                             size=jnp.minimum(state.size + 1, self.rows))

    def can_sample(self, state: ReplayState) -> jax.Array:
        return state.size >= self.min_rows

    def _valid_rows(self, state: ReplayState) -> tuple[jax.Array, jax.Array]:
        """``(bool[rows], count)``: rows whose window and stack history are all written and unbroken
        by the write cursor."""
        count = jnp.maximum(state.size - self.min_rows + 1, 0)
        age = (state.pos - self.lookahead - jnp.arange(self.rows)) % self.rows
        return age < count, count

    def sample(self, state: ReplayState, key: jax.Array, batch: int, beta: float | jax.Array = 1.0):
        """``(batch, (rows, envs))``: a batch dict of ``obs, action, return, discount, next_obs, weight``
        where the target is ``return + discount * max_a Q(next_obs, a)``, and where it came from (for
        `update_priorities`). Needs `can_sample`."""
        k_row, k_env = jax.random.split(key)
        valid, count = self._valid_rows(state)
        if self.prioritized:
            # masked after the power: 0 ** 0 is 1, which would give unwritten rows mass at alpha = 0
            probs = jnp.where(valid[:, None], state.priority ** self.alpha, 0.0)
            flat = stratified_draw(probs.reshape(-1), jax.random.uniform(k_row, (batch,)))
            rows, envs = flat // self.num_envs, flat % self.num_envs
            p = probs[rows, envs] / probs.sum()
            weight = (count * self.num_envs * p) ** (-beta)
            weight = weight / weight.max()
        else:
            age = jax.random.randint(k_row, (batch,), 0, jnp.maximum(count, 1))
            rows = (state.pos - self.lookahead - age) % self.rows
            envs = jnp.arange(batch) % self.num_envs if self.stratified else \
                jax.random.randint(k_env, (batch,), 0, self.num_envs)
            weight = jnp.ones(batch, jnp.float32)
        return {**self._window(state, rows, envs), "weight": weight}, (rows, envs)

    def _window(self, state: ReplayState, rows: jax.Array, envs: jax.Array) -> dict[str, jax.Array]:
        d = state.data
        offsets = jnp.arange(self.n_step)
        window = (rows[:, None] + offsets) % self.rows  # [B, n]
        at = lambda x: x[window, envs[:, None]]  # noqa: E731
        reward, term, done = at(d["reward"]), at(d["terminated"]), at(d["terminated"]) | at(d["truncated"])
        # step k counts when no earlier step of the window ended its episode
        alive = jnp.cumprod(jnp.concatenate([jnp.ones_like(done[:, :1]), ~done[:, :-1]], 1), 1)
        ret = (reward * alive * self.gamma ** offsets).sum(1)
        m = alive.sum(1)
        last = m - 1
        ended = (term if not self.frames else done)[jnp.arange(len(rows)), last]
        discount = jnp.where(ended, 0.0, self.gamma ** m.astype(jnp.float32))
        out = {"action": d["action"][rows, envs], "return": ret, "discount": discount}
        if self.frames:
            out["obs"] = self.stack(state, rows, envs)
            out["next_obs"] = self.stack(state, (rows + m) % self.rows, envs)
        else:
            out["obs"] = d["obs"][rows, envs]
            out["next_obs"] = d["next_obs"][(rows + last) % self.rows, envs]
        return out

    def stack(self, state: ReplayState, rows: jax.Array, envs: jax.Array) -> jax.Array:
        """The ``[B, ..., k]`` frame stacks of the observations at ``rows`` (frames mode)."""
        k = self.frame_stack
        d = state.data
        back = jnp.arange(1, k)  # rows r-1 .. r-k+1: does an episode end there?
        ended = (d["terminated"] | d["truncated"])[(rows[:, None] - back) % self.rows, envs[:, None]]
        since = jnp.cumprod(~ended, 1).sum(1)  # steps of the episode before r, capped at k-1
        j = jnp.arange(k - 1, -1, -1)  # oldest first
        src = rows[:, None] - jnp.minimum(j, since[:, None])
        frames = d["frame"][src % self.rows, envs[:, None]]  # [B, k, ...]
        if self.padding == "zero":
            keep = (j <= since[:, None]).reshape((len(rows), k) + (1,) * (frames.ndim - 2))
            frames = jnp.where(keep, frames, jnp.zeros_like(frames))
        return jnp.moveaxis(frames, 1, -1)

    def update_priorities(self, state: ReplayState, where: tuple[jax.Array, jax.Array],
                          priority: jax.Array) -> ReplayState:
        """Set the priorities of sampled steps (e.g. |TD error|) and track the largest seen."""
        priority = jnp.maximum(priority.astype(jnp.float32), 1e-6)
        rows, envs = where
        return state.replace(priority=state.priority.at[rows, envs].set(priority),
                             max_priority=jnp.maximum(state.max_priority, priority.max()))


def stratified_draw(probs: jax.Array, u: jax.Array) -> jax.Array:
    """Indices into ``probs`` (non-negative, some positive), one from each of ``len(u)`` equal strata of
    its mass, ``u`` in [0, 1) placing each draw in its stratum. Only indices of positive probability are
    returned, whatever the float rounding: the top stratum's ``u`` near 1 can round up to the total (past
    the last row), and a parallel cumsum need not be monotone, so a draw is moved onto the nearest
    positive-probability index at or before it (the first one if there is none before)."""
    batch = u.shape[0]
    cdf = jnp.cumsum(probs)
    total = cdf[-1]
    target = jnp.minimum((jnp.arange(batch) + u) / batch * total, jnp.nextafter(total, jnp.zeros_like(total)))
    flat = jnp.clip(jnp.searchsorted(cdf, target, side="right"), 0, probs.size - 1)
    index = jnp.arange(probs.size)
    positive_at_or_before = jax.lax.cummax(jnp.where(probs > 0, index, -1))
    first_positive = jnp.argmax(probs > 0)
    moved = positive_at_or_before[flat]
    return jnp.where(moved >= 0, moved, first_positive)


def frame_settings(frame_stack: int, padding: str, spec) -> tuple[int, str]:
    """An agent's frame options resolved against its env: ``frame_stack`` 0 and ``padding`` "env" take
    the env's own (``EnvSpec.frame_stack`` / ``frame_padding``: Atari's 4 zero-padded frames), so
    stacked frames are stored once without any setting."""
    k = spec.frame_stack if frame_stack == 0 else frame_stack
    return k, spec.frame_padding if padding == "env" else padding


def check(replay: Replay, prefix: str) -> None:
    """Raise ``ValueError`` naming the field for buffers that cannot work."""
    if replay.n_step < 1:
        raise ValueError(f"{prefix}n_step: must be >= 1, got {replay.n_step}")
    if replay.padding not in PADDINGS:
        raise ValueError(f"{prefix}frame_padding: {replay.padding!r} is not one of {', '.join(PADDINGS)}")
    if replay.rows < replay.min_rows + 1:
        raise ValueError(f"{prefix}buffer_size: {replay.capacity} holds {replay.rows} steps per env, fewer "
                         f"than an n-step window ({replay.min_rows + 1}) needs")
    if not 0 <= replay.alpha:
        raise ValueError(f"{prefix}alpha: must be >= 0, got {replay.alpha}")

