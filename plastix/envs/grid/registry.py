"""Registers every JAX MiniGrid family under MiniGrid's own ids."""

from __future__ import annotations

from plastix.envs.api import register
from plastix.envs.grid.layouts import (
    crossing,
    distshift,
    doorkey,
    dynamic_obstacles,
    empty,
    fetch,
    fourrooms,
    gotodoor,
    gotoobject,
    keycorridor,
    lavagap,
    lockedroom,
    memory,
    multiroom,
    obstructedmaze,
    playground,
    putnear,
    redbluedoors,
    unlock,
)
from plastix.envs.grid.taskmix import TASKMIX_ID, make_taskmix

FAMILIES = (empty, doorkey, lavagap, distshift, fourrooms, crossing, dynamic_obstacles, gotodoor,
            redbluedoors, gotoobject, fetch, memory, putnear, playground, unlock, keycorridor, multiroom,
            lockedroom, obstructedmaze)


def register_all() -> None:
    for family in FAMILIES:
        for env_id, defaults in family.IDS.items():
            register(env_id, family.make, **defaults)
    register(TASKMIX_ID, make_taskmix)
