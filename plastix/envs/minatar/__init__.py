"""MinAtar in JAX (Young & Tian 2019): the five games, exact to minatar 1.0.15.

``MinAtar/<Game>-v1`` plays the game's minimal action set, ``MinAtar/<Game>-v0`` all 6 actions (the
``minatar.gym`` ids); ``TaskMix/MinAtar-v0`` mixes games in one batch (`plastix.envs.minatar.taskmix`).
Game modules are imported when an env is built, not when the ids are registered.
"""

from __future__ import annotations

from plastix.envs.api import register
from plastix.envs.minatar.env import GAMES, MinAtarEnv, MinAtarError, MinAtarOptions, make_minatar
from plastix.envs.minatar.taskmix import MINATAR_TASKMIX_ID, make_minatar_taskmix


def register_all() -> None:
    """Register ``MinAtar/<Game>-v0`` (6 actions) and ``-v1`` (minimal set) for the five games, and the
    MinAtar task mix."""
    for name, title in GAMES.items():
        register(f"MinAtar/{title}-v0", make_minatar, game=name, minimal=False)
        register(f"MinAtar/{title}-v1", make_minatar, game=name, minimal=True)
    register(MINATAR_TASKMIX_ID, make_minatar_taskmix)


__all__ = ["GAMES", "MINATAR_TASKMIX_ID", "MinAtarEnv", "MinAtarError", "MinAtarOptions", "make_minatar",
           "register_all"]
