"""Human-normalised Atari scores: ``(score - random) / (human - random)`` with the DQN-era human and
random reference scores of 57 games (the table Dopamine's Atari-100k lab uses), kept beside the envs
so a run can report them in its summary."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np

HUMAN_RANDOM = Path(__file__).parent / "data" / "atari_human_random_scores.json"


@functools.cache
def _references() -> tuple[dict[str, float], dict[str, float]]:
    """(human, random) scores keyed by normalised game name, read once."""
    table = json.loads(HUMAN_RANDOM.read_text())
    return ({game_key(k): v for k, v in table["human"].items()},
            {game_key(k): v for k, v in table["random"].items()})


def game_key(name: str) -> str:
    """``ALE/MsPacman-v5``, ``CALE/MsPacman-v5``, ``ms_pacman``, ``MsPacman`` -> ``mspacman``."""
    name = name.lower().split("/", 1)[-1]
    return re.sub(r"[^a-z0-9]", "", name.split("-v")[0])


def has_reference(game: str) -> bool:
    """Whether ``game`` (any spelling, or an env id) has human and random reference scores."""
    return game_key(game) in _references()[0]


def human_normalized(score: float | np.ndarray, game: str) -> float | np.ndarray:
    """``(score - random) / (human - random)``; game names in any case / spacing (``MsPacman``,
    ``ms_pacman``, ``ALE/MsPacman-v5``)."""
    key = game_key(game)
    human, random = _references()
    if key not in human:
        raise ValueError(f"game: {game!r} has no human / random reference; known: {', '.join(sorted(human))}")
    return (np.asarray(score, float) - random[key]) / (human[key] - random[key])
