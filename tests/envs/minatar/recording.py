"""The reference's random draws, recorded: a numpy ``RandomState`` whose calls are logged, installed
as the one stream a ``minatar.Environment`` shares between sticky actions and its game (as
``Environment.seed`` does), so each ``act()`` / ``reset()``'s draws can be fed to plastix's cores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from minatar import Environment


@dataclass
class Call:
    method: str  # "rand" or "randint"
    args: tuple
    kwargs: dict
    value: Any


@dataclass
class RecordingRandom:
    """Forwards ``rand`` / ``randint`` to a seeded ``RandomState`` and appends each call to ``calls``."""

    seed: int
    calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = np.random.RandomState(self.seed)

    def rand(self, *args, **kwargs):
        value = self._random.rand(*args, **kwargs)
        self.calls.append(Call("rand", args, kwargs, value))
        return value

    def randint(self, *args, **kwargs):
        value = self._random.randint(*args, **kwargs)
        self.calls.append(Call("randint", args, kwargs, value))
        return value

    def take(self) -> list[Call]:
        """The calls since the last ``take``."""
        calls, self.calls = self.calls, []
        return calls


def recorded_env(game: str, seed: int, sticky: float = 0.1, ramping: bool = True):
    """``(minatar.Environment, RecordingRandom)``: the reference env with one recorded stream; its
    construction-time reset used an unrecorded stream, so call ``env.reset()`` before stepping."""
    env = Environment(game, sticky_action_prob=sticky, difficulty_ramping=ramping)
    rec = RecordingRandom(seed)
    env.random = rec
    env.env.random = rec
    return env, rec
