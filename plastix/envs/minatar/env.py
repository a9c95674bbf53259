"""`MinAtarEnv`: one MinAtar game (`plastix.envs.minatar.game.Game`) as a pure plastix `Env`, with the
reference's sticky actions, its difficulty-ramping switch, the ``-v1`` minimal action set, and the
options of the gymnax / PureJaxRL protocol (sticky 0, a step cap counted as truncation).

Sticky actions are the reference ``Environment.act``'s: every step draws one uniform first (also when
the probability is 0) and, when it is below ``sticky``, the last *executed* action runs instead of the
chosen one. That last action is part of the env state and survives resets, auto-resets included (the
reference's ``last_action`` starts at 0 only at construction), which is why this env has its own `step`.
There is no time limit but the games' own (Freeway terminates itself after 2,501 steps) unless
``max_steps`` sets one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from plastix.envs.api import Box, Discrete, Env, Space, auto_reset
from plastix.envs.minatar.game import ACTIONS, SIZE, Game, random_words

# the reference's module names and the names in env ids, in the reference's (alphabetical) order
GAMES = {"asterix": "Asterix", "breakout": "Breakout", "freeway": "Freeway", "seaquest": "Seaquest",
         "space_invaders": "SpaceInvaders"}
NO_LIMIT = 2**31 - 1  # `max_steps` of an env without a step cap: no episode is ever truncated


class MinAtarError(ValueError):
    """A MinAtar option out of range, or an observation layout that misses a game's channel."""


@dataclass(frozen=True)
class MinAtarOptions:
    """How MinAtar games are played (``--minatar.*``); the defaults are the reference's (Young & Tian)."""

    sticky: float = 0.1
    """Sticky-action probability: the last executed action repeats instead of the chosen one; the
    gymnax / PureJaxRL protocol uses 0."""
    ramping: bool = True
    """Difficulty ramping (Asterix, Seaquest, SpaceInvaders speed up as the game goes on; Breakout and
    Freeway have no ramp)."""
    max_steps: int = 0
    """Truncate episodes after this many steps (gymnax's protocol: 1,000); 0: no cap but the games' own
    (Freeway terminates after 2,501 steps)."""

    def check(self, prefix: str = "minatar.") -> None:
        """Raise `MinAtarError` naming the first field out of range."""
        if isinstance(self.sticky, bool) or not isinstance(self.sticky, int | float) \
                or not 0.0 <= self.sticky < 1.0:
            raise MinAtarError(f"{prefix}sticky: the sticky-action probability must lie in [0, 1), got "
                               f"{self.sticky!r}")
        if not isinstance(self.ramping, bool):
            raise MinAtarError(f"{prefix}ramping: expected a bool, got {self.ramping!r}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 0:
            raise MinAtarError(f"{prefix}max_steps: must be an integer >= 0 (0: no cap), got "
                               f"{self.max_steps!r}")


@struct.dataclass
class MinAtarState:
    game: Any  # the game's own state
    last_action: jax.Array  # int32, the last executed action (full-set index), kept across resets
    t: jax.Array  # int32, steps in this episode


def load_game(name: str) -> Game:
    """The `Game` of the reference's module ``name`` (``breakout``, ``space_invaders``, ...)."""
    if name not in GAMES:
        raise MinAtarError(f"game: {name!r} is not one of {', '.join(GAMES)}")
    return importlib.import_module(f"plastix.envs.minatar.{name}").GAME


@dataclass(frozen=True, eq=False)
class MinAtarEnv(Env):
    """A MinAtar game (one env; vmap for batches).

    ``minimal``: the ``-v1`` ids' action space, indices into the game's minimal action set (mapped to
    the full set before sticky actions, as ``minatar.gym`` does); otherwise all 6 actions (``-v0``).
    ``channels``: the observation's channel layout, when several games share one (a task mix): each of
    the game's channels goes to the channel of that name and the others stay empty; default: the game's.
    """

    env_id: str
    game: Game
    minimal: bool = True
    options: MinAtarOptions = field(default_factory=MinAtarOptions)
    channels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.options.check()
        if self.channels is not None:
            missing = [c for c in self.game.channels if c not in self.channels]
            if missing:
                raise MinAtarError(f"channels: the layout lacks {self.game.title}'s channels {missing}")

    @property
    def actions(self) -> tuple[int, ...]:
        """The full-set index of each action of the action space."""
        return self.game.minimal_actions if self.minimal else tuple(range(len(ACTIONS)))

    @property
    def max_steps(self) -> int:
        return self.options.max_steps or NO_LIMIT

    @property
    def observation_space(self) -> Space:
        return Box(0, 1, (SIZE, SIZE, len(self.channels or self.game.channels)), jnp.bool_)

    @property
    def action_space(self) -> Space:
        return Discrete(len(self.actions))

    def draw_reset(self, key: jax.Array) -> Any:
        """The random draws of one reset (the game's)."""
        return self.game.draw_reset(key)

    def draw(self, key: jax.Array, state: MinAtarState) -> tuple[jax.Array, Any, Any]:
        """The random draws of one step and of the reset that follows it if it ends the episode: the
        sticky uniform (drawn first), the game's step draws and its reset draws, from one threefry call
        (`random_words`; split keys would cost a call each)."""
        g = self.game
        words = random_words(key, 1 + g.step_words + g.reset_words)
        sticky_u = (words[0] >> 9).astype(jnp.float32) * np.float32(2.0**-23)  # jax.random.uniform's value
        return (sticky_u, g.step_draws(words[1:1 + g.step_words], state.game),
                g.reset_draws(words[1 + g.step_words:]))

    def reset_env(self, key: jax.Array, params: Any = None) -> MinAtarState:
        return self.first_state(self.draw_reset(key), jnp.int32(0))

    def first_state(self, reset_draws: Any, last_action: jax.Array) -> MinAtarState:
        """The first state of an episode from its reset draws, with the last executed action given."""
        return MinAtarState(self.game.reset(reset_draws), last_action, jnp.int32(0))

    def next_episode(self, key: jax.Array, state: MinAtarState) -> MinAtarState:
        """The first state of the episode after ``state``: fresh, but with its last executed action (the
        reference's ``reset`` keeps ``last_action``)."""
        return self.first_state(self.draw_reset(key), state.last_action)

    def advance(self, state: MinAtarState, action: jax.Array, sticky_u: jax.Array,
                draws: Any) -> tuple[MinAtarState, jax.Array, jax.Array, jax.Array]:
        """One step from given draws (deterministic): ``(state, reward, terminated, truncated)``."""
        chosen = jnp.asarray(self.actions, jnp.int32)[jnp.asarray(action, jnp.int32)]
        executed = jnp.where(sticky_u < self.options.sticky, state.last_action, chosen)
        game, reward, terminated = self.game.step(state.game, executed, draws, self.options.ramping)
        t = state.t + 1
        truncated = t >= self.options.max_steps if self.options.max_steps else jnp.bool_(False)
        return MinAtarState(game, executed, t), reward, terminated, truncated

    def step_env(self, key: jax.Array, state: MinAtarState, action: jax.Array, params: Any = None):
        sticky_u, draws, _ = self.draw(key, state)
        state, reward, terminated, truncated = self.advance(state, action, sticky_u, draws)
        return state, reward, terminated, truncated, {}

    def step(self, key: jax.Array, state: MinAtarState, action: jax.Array, params: Any = None):
        """`Env.step`, with the last executed action carried into the next episode at an auto-reset; the
        step and the reset that may follow it draw from one threefry call (`draw`)."""
        sticky_u, draws, reset_draws = self.draw(key, state)
        next_state, reward, terminated, truncated = self.advance(state, action, sticky_u, draws)
        return auto_reset(self, params, next_state, self.first_state(reset_draws, next_state.last_action),
                          reward, terminated, truncated, {}, self.game.select_observation)

    def observe(self, state: MinAtarState, params: Any = None) -> jax.Array:
        obs = self.game.observe(state.game)
        if self.channels is None or self.channels == self.game.channels:
            return obs
        where = np.asarray([self.channels.index(c) for c in self.game.channels])
        return jnp.zeros(obs.shape[:-1] + (len(self.channels),), obs.dtype).at[..., where].set(obs)


def make_minatar(env_id: str, game: str, minimal: bool, options: MinAtarOptions = MinAtarOptions(),
                 channels: tuple[str, ...] | None = None) -> MinAtarEnv:
    """The env of a registered ``MinAtar/<Game>-v0`` / ``-v1`` id (the game module is imported here)."""
    if not isinstance(options, MinAtarOptions):
        raise MinAtarError(f"minatar: expected MinAtarOptions, got {options!r}")
    return MinAtarEnv(env_id, load_game(game), minimal, options, channels)
