"""Missions as integers: strings do not live in JAX, so a mission is ``int32[MISSION_LEN]``.

Layout: ``(kind, object, colour, object2, colour2, extra)``; `describe` turns it back into MiniGrid's
sentence and `encode` parses MiniGrid's sentence, so tests compare both ways.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np

from plastix.envs.grid.entities import COLOR, COLORS, OBJ, OBJECTS
from plastix.envs.grid.state import MISSION_LEN

KINDS = ("none", "go_to", "open_red_then_blue", "fetch", "memory", "put_near", "open_door",
         "pick_up", "locked_room")
FETCH_SYNTAX = ("get a", "go get a", "fetch a", "go fetch a", "you must fetch a")
KIND = {name: i for i, name in enumerate(KINDS)}

_TEMPLATES = {
    "go_to": (re.compile(r"^go to the (\w+) (\w+)$"), "go to the {color} {obj}"),
    "open_red_then_blue": (re.compile(r"^open the red door then the blue door$"),
                           "open the red door then the blue door"),
    "memory": (re.compile(r"^go to the matching object at the end of the hallway$"),
               "go to the matching object at the end of the hallway"),
    "open_door": (re.compile(r"^open the door$"), "open the door"),
    "pick_up": (re.compile(r"^pick up the (\w+) (\w+)$"), "pick up the {color} {obj}"),
    "put_near": (re.compile(r"^put the (\w+) (\w+) near the (\w+) (\w+)$"),
                 "put the {color} {obj} near the {color2} {obj2}"),
    "locked_room": (
        re.compile(r"^get the (\w+) key from the (\w+) room, unlock the \1 door and go to the goal$"),
        "get the {color} key from the {color2} room, unlock the {color} door and go to the goal"),
    "fetch": (re.compile(r"^(get a|go get a|fetch a|go fetch a|you must fetch a) (\w+) (\w+)$"),
              "{syntax} {color} {obj}"),
}


def mission(kind: str, obj: int = 0, color: int = 0, obj2: int = 0, color2: int = 0,
            extra: int = 0) -> jnp.ndarray:
    """An integer mission (fields may be traced)."""
    return jnp.stack([jnp.asarray(v, jnp.int32) for v in
                      (KIND[kind], obj, color, obj2, color2, extra)])


def describe(m) -> str:
    """MiniGrid's mission sentence for an integer mission."""
    m = np.asarray(m)
    kind = KINDS[int(m[0])]
    if kind == "none":
        return ""
    return _TEMPLATES[kind][1].format(obj=OBJECTS[int(m[1])], color=COLORS[int(m[2])],
                                      obj2=OBJECTS[int(m[3])], color2=COLORS[int(m[4])],
                                      syntax=FETCH_SYNTAX[int(m[5])])


def encode(sentence: str) -> np.ndarray:
    """The integer mission of a MiniGrid sentence this module knows (zeros otherwise)."""
    for kind, (pattern, _) in _TEMPLATES.items():
        match = pattern.match(sentence)
        if match is None:
            continue
        if kind in ("go_to", "pick_up"):
            color, obj = match.groups()
            return np.array([KIND[kind], OBJ[obj], COLOR[color], 0, 0, 0], np.int32)
        if kind == "locked_room":
            color, color2 = match.groups()
            return np.array([KIND[kind], OBJ["key"], COLOR[color], 0, COLOR[color2], 0], np.int32)
        if kind == "put_near":
            c, o, c2, o2 = match.groups()
            return np.array([KIND[kind], OBJ[o], COLOR[c], OBJ[o2], COLOR[c2], 0], np.int32)
        if kind == "fetch":
            syntax, color, obj = match.groups()
            return np.array([KIND[kind], OBJ[obj], COLOR[color], 0, 0, FETCH_SYNTAX.index(syntax)],
                            np.int32)
        return np.array([KIND[kind], 0, 0, 0, 0, 0], np.int32)  # sentences without fields
    return np.zeros(MISSION_LEN, np.int32)
