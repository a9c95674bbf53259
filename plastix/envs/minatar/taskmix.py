"""MinAtar games in one batch (``TaskMix/MinAtar-v0``, ``--taskmix.tasks MinAtar/Breakout-v0 ...``): the
multi-task and continual settings of Willi et al. 2024 (PPO on SpaceInvaders, Breakout and Asterix),
through the shared `plastix.envs.taskmix.TaskMix`.

One network reads every game: each game's observation is laid out in the union of the five games'
channels (`UNION_CHANNELS`: the channel names in the order they first appear over the games in the
reference's order, a name the games share, like ``trail``, being one channel), its own channels in
their places and the others empty, the same layout whichever games a mix holds; every game plays the
6-action set (``-v0`` ids). The MinAtar options (``--minatar.*``: sticky actions, ramping, step cap)
apply to every game; each game keeps its own last executed action across its episodes, as it would
alone.
"""

from __future__ import annotations

import functools

from plastix.envs.api import make
from plastix.envs.minatar.env import GAMES, MinAtarOptions, load_game
from plastix.envs.taskmix import TaskMix, TaskMixError, TaskMixOptions, check_options

MINATAR_TASKMIX_ID = "TaskMix/MinAtar-v0"
GAME_IDS = tuple(f"MinAtar/{title}-v0" for title in GAMES.values())


@functools.cache
def union_channels() -> tuple[str, ...]:
    """The channel layout of a MinAtar mix: every game's channel names, each once, in first-seen order."""
    names: list[str] = []
    for name in GAMES:
        names += [c for c in load_game(name).channels if c not in names]
    return tuple(names)


def make_minatar_taskmix(env_id: str = MINATAR_TASKMIX_ID, options: TaskMixOptions | None = None,
                         minatar: MinAtarOptions | None = None) -> TaskMix:
    """The mix of the ``MinAtar/<Game>-v0`` ids ``options`` names (checked, close matches, before any
    game is built), every game played with ``minatar``'s options (default: the reference's)."""
    options, minatar = options or TaskMixOptions(), minatar or MinAtarOptions()
    v1 = [t for t in options.tasks if t.startswith("MinAtar/") and t.endswith("-v1")]
    if v1:
        raise TaskMixError(f"taskmix.tasks: a MinAtar mix plays every game with the 6 actions; use the -v0 "
                           f"ids ({', '.join(t[:-1] + '0' for t in v1)}), not {', '.join(v1)}")
    check_options(options, lambda task: task in GAME_IDS, "MinAtar game ids (MinAtar/<Game>-v0)")
    channels = union_channels()
    return TaskMix(env_id, tuple(make(t, options=minatar, channels=channels) for t in options.tasks), options)
