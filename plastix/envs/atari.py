"""The Arcade Learning Environment on the host, discrete (``ALE/<Game>-v5``) and with continuous actions
(CALE, ``CALE/<Game>-v5``), through ale-py's C++ `AtariVectorEnv` (preprocessing on threads).

Conventions (the ALE v5 ones unless an option says otherwise):

- observations: the last 4 frames, 84x84 grey, max-pooled over the last two of each 4 skipped frames,
  as ``uint8 [84, 84, 4]``, newest last; a new episode's stack is padded with zero frames (ale-py's own);
- sticky actions 0.25 (``sticky``; Atari-100k recipes set 0), up to 30 no-op actions at a reset,
  episodes cut at 108,000 frames (27,000 agent steps), the minimal action set unless ``full_actions``;
- ``episodic_life``: a lost life is a termination for the agent while the game goes on (Dopamine's
  ``terminal_on_life_loss``); the episode that statistics and evaluation count is still the whole game
  (``info["episode_end"]``). ale-py's own ``episodic_life`` restarts the game at every life, a
  different task, and is not used;
- ``clip_rewards``: rewards given to the agent are clipped to [-1, 1]; the game score
  (``info["score"]``) stays unclipped for logging and evaluation;
- CALE: actions ``a`` in ``[-1, 1]^3`` are ``(r, theta, fire) = ((a0 + 1) / 2, pi a1, (a2 + 1) / 2)``;
  ale-py turns them into a joystick event (`joystick`, threshold ``cale_threshold``) and passes ``r`` as
  the paddle strength. CALE uses the full action set.

ale-py's vector env cannot save an emulator state, so a run restored from a checkpoint restarts its
episodes from fresh resets (agent, optimiser and replay are restored exactly; see `plastix.run.host_loop`).
"""

from __future__ import annotations

import difflib
import functools
import importlib
import importlib.util
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from plastix.envs.api import Box, Discrete, EnvSpec, register

FRAMES = 4
MAX_FRAMES = 108_000  # per episode, the v5 limit (27,000 agent steps at frameskip 4)

# the 26 games of Atari 100k (Kaiser et al. 2020), as ale-py ROM ids
ATARI_100K = ("alien", "amidar", "assault", "asterix", "bank_heist", "battle_zone", "boxing", "breakout",
              "chopper_command", "crazy_climber", "demon_attack", "freeway", "frostbite", "gopher", "hero",
              "jamesbond", "kangaroo", "krull", "kung_fu_master", "ms_pacman", "pong", "private_eye",
              "qbert", "road_runner", "seaquest", "up_n_down")


class AtariSetupError(ValueError):
    """An unknown game, or an ALE option out of range."""


def _ale() -> Any:
    try:
        ale = importlib.import_module("ale_py")
    except ImportError as err:
        raise ImportError(f"ale-py is missing: reinstall plastix (`pip install -e .`), which requires it "
                          f"({err})") from None
    ale.ALEInterface.setLoggerMode(ale.LoggerMode.Error)  # no banner per emulator
    return ale


@functools.cache
def rom_ids() -> tuple[str, ...]:
    """The games ale-py ships (its ROM files), found without importing the emulator; () without ale-py."""
    found = importlib.util.find_spec("ale_py")
    if found is None or found.origin is None:
        return ()
    return tuple(sorted(p.stem for p in (Path(found.origin).parent / "roms").glob("*.bin")))


def game_name(rom: str) -> str:
    """ale-py's ROM id to the name in env ids: ``ms_pacman`` -> ``MsPacman``."""
    return "".join(part.capitalize() for part in rom.split("_"))


def rom_id(env_id: str) -> str:
    """``ALE/MsPacman-v5`` or ``CALE/MsPacman-v5`` -> ``ms_pacman``; unknown games fail with close matches."""
    name = env_id.split("/", 1)[-1].removesuffix("-v5")
    roms = {game_name(r): r for r in rom_ids()}
    if name not in roms:
        prefix = env_id.split("/", 1)[0] if "/" in env_id else "ALE"
        close = difflib.get_close_matches(name, list(roms), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(f'{prefix}/{c}-v5' for c in close)}?" if close else ""
        raise AtariSetupError(f"env: unknown Atari game {env_id!r}.{hint} ale-py ships {len(roms)} games: "
                              f"`plastix.envs.list_envs('ALE/')` lists them.")
    return roms[name]


def joystick(r: np.ndarray, theta: np.ndarray, fire: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """CALE's map from ``(r, theta, fire)`` to the full-action-set index (ale-py's ``Action``): the point
    ``(r cos theta, r sin theta)`` moves the joystick along an axis when its coordinate is beyond
    +-``threshold``; fire when ``fire > threshold``."""
    x, y = r * np.cos(theta), r * np.sin(theta)
    h = (x > threshold).astype(int) - (x < -threshold).astype(int)
    v = (y > threshold).astype(int) - (y < -threshold).astype(int)
    f = (np.asarray(fire) > threshold).astype(int)
    return _joystick_table()[h + 1, v + 1, f]


@functools.cache
def _joystick_table() -> np.ndarray:
    """ale-py's own ``(horizontal, vertical, fire) -> Action`` map (vertical +1 is UP) as a lookup table."""
    to_action = importlib.import_module("ale_py.env").AtariEnv.map_action_idx
    table = np.zeros((3, 3, 2), int)
    for h, v, f in np.ndindex(3, 3, 2):
        table[h, v, f] = to_action(h - 1, v - 1, bool(f)).value
    return table


def cale_controls(action: np.ndarray) -> np.ndarray:
    """Agent actions in ``[-1, 1]^3`` -> CALE's ``(r, theta, fire)`` in ``[0, 1] x [-pi, pi] x [0, 1]``."""
    a = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
    return np.stack([(a[..., 0] + 1) / 2, np.pi * a[..., 1], (a[..., 2] + 1) / 2], -1).astype(np.float32)


class AtariVecEnv:
    """``num_envs`` ALE games on ale-py's threads, auto-resetting in the same step: a `HostVecEnv`."""

    def __init__(self, spec: EnvSpec, options: AtariOptions, continuous: bool, num_envs: int):
        self.spec, self.options, self.continuous, self.num_envs = spec, options, continuous, num_envs
        o = options
        self.vec = _ale().vector_env.AtariVectorEnv(
            rom_id(spec.env_id), num_envs, num_threads=o.num_threads,
            max_num_frames_per_episode=MAX_FRAMES, repeat_action_probability=o.sticky,
            full_action_space=o.full_actions, continuous=continuous,
            continuous_action_threshold=o.cale_threshold,
            autoreset_mode="SameStep", stack_num=FRAMES, frameskip=4, noop_max=o.noop_max,
            episodic_life=False, life_loss_info=o.episodic_life, reward_clipping=False)
        self.lives = np.zeros(num_envs, np.int64)

    @staticmethod
    def _frames(obs: np.ndarray) -> np.ndarray:
        return np.moveaxis(obs, 1, -1)  # [N, 4, 84, 84] -> [N, 84, 84, 4]

    def reset(self, seed: int | np.ndarray) -> np.ndarray:
        """Start every game; ``seed`` is one base seed, or one per env."""
        seeds = np.broadcast_to(np.asarray(seed, np.int64) % 2**31, (self.num_envs,)).astype(np.int64).copy()
        obs, info = self.vec.reset(seed=seeds)
        self.lives = np.asarray(info["lives"], np.int64)
        return self._frames(obs)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self.continuous:
            actions = cale_controls(actions)
        else:
            actions = np.asarray(actions, np.int32)
        obs, score, terminated, truncated, info = self.vec.step(actions)
        score = np.asarray(score, np.float32)
        lives = np.asarray(info["lives"], np.int64)
        # a termination without a lost life (lives kept, or refilled by the reset) is a game over
        game_over = terminated & ~(lives < self.lives) | truncated
        self.lives = lives
        reward = np.clip(score, -1.0, 1.0) if self.options.clip_rewards else score
        final = info.get("final_obs")
        return self._frames(obs), reward, terminated, truncated, {
            "final_obs": self._frames(final) if final is not None else self._frames(obs),
            "episode_end": game_over, "score": score}

    def close(self) -> None:
        self.vec = None


@functools.cache
def _num_actions(rom: str, full: bool) -> int:
    """The size of a game's action set (loads its ROM once per process)."""
    ale = _ale()
    interface = ale.ALEInterface()
    interface.loadROM(ale.roms.get_rom_path(rom))
    return len(interface.getLegalActionSet() if full else interface.getMinimalActionSet())


@dataclass(frozen=True)
class AtariOptions:
    """How the ALE is played (``--atari.*``); defaults are the v5 conventions."""

    sticky: float = 0.25
    """Sticky-action probability (the previous action repeats); Atari-100k recipes set 0."""
    episodic_life: bool = False
    """A lost life is a termination for the agent (the game goes on; statistics count whole games)."""
    clip_rewards: bool = False
    """Clip the agent's rewards to [-1, 1] (logged scores stay unclipped)."""
    full_actions: bool = False
    """All 18 joystick actions instead of the game's minimal set (CALE always uses them)."""
    noop_max: int = 30
    """Up to this many no-op actions after a reset."""
    cale_threshold: float = 0.5
    """CALE: how far the joystick point must move along an axis (and fire) to register."""
    num_threads: int = 0
    """Emulator threads; 0: one per core."""

    def check(self, prefix: str = "atari.") -> None:
        """Raise `AtariSetupError` naming the first field out of range."""
        if not 0.0 <= self.sticky <= 1.0:
            raise AtariSetupError(f"{prefix}sticky: the sticky-action probability must lie in [0, 1], got "
                                  f"{self.sticky!r}")
        if not 0.0 < self.cale_threshold < 1.0:
            raise AtariSetupError(f"{prefix}cale_threshold: must lie in (0, 1), got {self.cale_threshold!r}")
        for name in ("noop_max", "num_threads"):
            if getattr(self, name) < 0:
                raise AtariSetupError(f"{prefix}{name}: must be >= 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class AtariEnv:
    """A registered ALE / CALE id with its options, and `vector` to build batches (a host env family)."""

    env_id: str
    options: AtariOptions = AtariOptions()

    def __post_init__(self):
        self.options.check()
        rom_id(self.env_id)

    @property
    def continuous(self) -> bool:
        return self.env_id.startswith("CALE/")

    @cached_property
    def spec(self) -> EnvSpec:
        if self.continuous:
            actions = Box(-1.0, 1.0, (3,), np.float32)
        else:
            actions = Discrete(_num_actions(rom_id(self.env_id), self.options.full_actions))
        return EnvSpec(self.env_id, Box(0, 255, (84, 84, FRAMES), np.uint8), actions, MAX_FRAMES // 4, False,
                       frame_stack=FRAMES, frame_padding="zero")

    def vector(self, num_envs: int) -> AtariVecEnv:
        """``num_envs`` games, to be seeded by ``reset``."""
        return AtariVecEnv(self.spec, self.options, self.continuous, num_envs)


def register_all() -> None:
    """Register ``ALE/<Game>-v5`` and ``CALE/<Game>-v5`` for every ROM ale-py ships (none without it)."""
    for rom in rom_ids():
        register(f"ALE/{game_name(rom)}-v5", AtariEnv)
        register(f"CALE/{game_name(rom)}-v5", AtariEnv)
