"""The contract of one MinAtar game (Young & Tian 2019): a deterministic core that takes its random
draws as input, and the functions that draw them from a JAX key with the reference's distributions.

Keeping the draws outside the core is what makes the games testable as exact: a test records the
reference's own numpy draws and feeds them to ``reset`` / ``step``, and the same core runs in training
with draws from ``draw_reset`` / ``draw_step``. Every function is pure and acts on ONE env (vmap for
batches). Actions are always indices into the full set of 6 (``ACTIONS``); the env maps a minimal-set
index to it first, and sticky actions are the env's (`plastix.envs.minatar.env`), not the game's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax

ACTIONS = ("n", "l", "u", "r", "d", "f")  # MinAtar's full action set, in its order
SIZE = 10  # every game is a 10x10 grid


@dataclass(frozen=True)
class Game:
    """One game's rules.

    - ``reset(draws) -> state``: the first state of an episode, from ``draw_reset(key)``'s draws;
    - ``step(state, action, draws, ramping) -> (state, reward, terminal)``: one ``act()`` of the
      reference (``action`` int32 in 0..5, ``ramping`` a Python bool, ``reward`` float32, ``terminal``
      bool). A state that is already terminal steps to itself with reward 0, as the reference does;
    - ``draw_reset(key) -> draws`` and ``draw_step(key, state) -> draws``: pytrees of the draws one reset
      / one step consumes, with the reference's distributions (a draw whose range depends on the state,
      like Asterix's free slot, reads ``state``);
    - ``observe(state) -> bool[10, 10, C]``, channels in ``channels`` order;
    - ``from_minatar(game_env) -> state``: the state of a reference game object
      (``minatar.Environment(...).env``), so tests can import states in rare branches.
    """

    name: str  # the reference's module name: asterix, breakout, freeway, seaquest, space_invaders
    title: str  # the id's name: Asterix, Breakout, Freeway, Seaquest, SpaceInvaders
    channels: tuple[str, ...]
    minimal_actions: tuple[int, ...]  # indices into ACTIONS
    reset: Callable[[Any], Any]
    step: Callable[[Any, jax.Array, Any, bool], tuple[Any, jax.Array, jax.Array]]
    draw_reset: Callable[[jax.Array], Any]
    draw_step: Callable[[jax.Array, Any], Any]
    observe: Callable[[Any], jax.Array]
    from_minatar: Callable[[Any], Any]
