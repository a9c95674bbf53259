"""Environments behind one batched, functional interface; `make` builds any registered id."""

from plastix.envs.api import (
    Box,
    Discrete,
    Env,
    EnvSpec,
    HostVecEnv,
    UnknownEnvError,
    check_env_id,
    list_envs,
    make,
    register,
)
from plastix.envs.atari import register_all as _register_atari
from plastix.envs.control import register_all as _register_control
from plastix.envs.grid.registry import register_all as _register_grid
from plastix.envs.metaworld import register_all as _register_metaworld
from plastix.envs.minatar import register_all as _register_minatar

_register_grid()
_register_control()
_register_atari()
_register_metaworld()
_register_minatar()

__all__ = [
    "Box", "Discrete", "Env", "EnvSpec", "HostVecEnv", "UnknownEnvError",
    "check_env_id", "list_envs", "make", "register",
]
