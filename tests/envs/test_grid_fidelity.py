"""Transition-for-transition agreement with Farama minigrid, from imported states."""

import functools

import gymnasium as gym
import jax
import minigrid  # noqa: F401  (registers the MiniGrid-* ids)
import numpy as np
import pytest

import plastix.envs as E
from plastix.envs.grid import Action
from plastix.envs.grid.convert import from_minigrid
from plastix.envs.grid.entities import DOOR, GOAL, KEY, OPEN, TYPE

GRID_IDS = E.list_envs("MiniGrid-")


@functools.cache
def _jitted(env_id, **kwargs):
    env = E.make(env_id, **dict(kwargs))
    return env, jax.jit(env.step_env), jax.jit(env.observe)


def _compare(env_id, ref, actions, **kwargs):
    """Step both implementations with ``actions``; assert identical obs, reward, term, trunc."""
    env, step, observe = _jitted(env_id, **kwargs)
    state = from_minigrid(ref)
    obs = ref.unwrapped.gen_obs()
    assert np.array_equal(np.asarray(observe(state)), obs["image"])
    events = set()
    for t, a in enumerate(actions):
        obs, r, term, trunc, _ = ref.step(int(a))
        state, r2, term2, trunc2, _ = step(jax.random.PRNGKey(0), state, int(a))
        ours = np.asarray(observe(state))
        assert np.array_equal(ours, obs["image"]), f"{env_id} obs differs at step {t} action {a}"
        assert abs(float(r2) - r) < 1e-6, f"{env_id} reward differs at step {t}"
        assert (bool(term2), bool(trunc2)) == (term, trunc), f"{env_id} done differs at step {t}"
        assert int(state.agent_dir) == ref.unwrapped.agent_dir
        carrying = ref.unwrapped.carrying
        events.add("carry" if carrying is not None else "")
        if term:
            events.add("success" if r > 0 else "fail")
        if term or trunc:
            return events
    return events


@pytest.mark.parametrize("env_id", GRID_IDS)
def test_random_actions_match_minigrid(env_id):
    rng = np.random.default_rng(0)
    ref = gym.make(env_id)
    steps = 0
    for ep in range(12):
        ref.reset(seed=ep)
        # favour forward / pickup / toggle so doors open and keys move
        actions = rng.choice(7, size=400, p=[0.12, 0.12, 0.34, 0.14, 0.08, 0.14, 0.06])
        _compare(env_id, ref, actions)
        steps += ref.unwrapped.step_count
    assert steps > 300


def _solve_doorkey(ref):
    """A scripted MiniGrid-DoorKey solution (BFS over minigrid's own state): key, door, goal."""
    from collections import deque

    base = ref.unwrapped
    dirs = [(1, 0), (0, 1), (-1, 0), (0, -1)]

    def path_to(target_pred):
        start = (tuple(base.agent_pos), base.agent_dir)
        prev = {start: None}
        queue = deque([start])
        while queue:
            (pos, d) = node = queue.popleft()
            front = (pos[0] + dirs[d][0], pos[1] + dirs[d][1])
            if target_pred(front):
                plan = []
                while prev[node] is not None:
                    node, a = prev[node]
                    plan.append(a)
                return plan[::-1]
            cell = base.grid.get(*front)
            moves = [((pos, (d - 1) % 4), 0), ((pos, (d + 1) % 4), 1)]
            if cell is None or cell.can_overlap():
                moves.append(((front, d), 2))
            for nxt, a in moves:
                if nxt not in prev:
                    prev[nxt] = (node, a)
                    queue.append(nxt)
        raise AssertionError("no path")

    def cell_is(kind):
        return lambda p: (c := base.grid.get(*p)) is not None and c.type == kind

    actions = []
    for kind, act in (("key", 3), ("door", 5)):
        plan = path_to(cell_is(kind)) + [act]
        for a in plan:
            ref.step(a)
        actions += plan
    plan = path_to(cell_is("goal")) + [2]
    return actions + plan


@pytest.mark.parametrize("size", [5, 6, 8, 16])
def test_doorkey_solutions_match_minigrid(size):
    env_id = f"MiniGrid-DoorKey-{size}x{size}-v0"
    for seed in range(5):
        ref = gym.make(env_id)
        ref.reset(seed=seed)
        solution = _solve_doorkey(ref)
        ref.reset(seed=seed)
        events = _compare(env_id, ref, solution)
        assert {"carry", "success"} <= events


def test_larger_view_and_see_through_match_minigrid():
    """The table-driven occlusion (view <= 9) and the unrolled one (view > 9) both match."""
    rng = np.random.default_rng(1)
    for view in (3, 5, 9, 11):
        ref = gym.make("MiniGrid-DoorKey-8x8-v0", agent_view_size=view)
        for ep in range(4):
            ref.reset(seed=100 + ep)
            _compare("MiniGrid-DoorKey-8x8-v0", ref, rng.integers(0, 7, 200), view_size=view)


def test_imported_state_round_trip():
    ref = gym.make("MiniGrid-DoorKey-8x8-v0")
    ref.reset(seed=7)
    state = from_minigrid(ref)
    assert np.array_equal(np.asarray(state.grid[..., :3]), ref.unwrapped.grid.encode())
    assert state.agent_pos.tolist() == list(ref.unwrapped.agent_pos)


def test_layout_distribution_matches_minigrid_doorkey():
    """Our DoorKey generator's structure: split column, door, key and agent on the left, goal."""
    env = E.make("MiniGrid-DoorKey-8x8-v0")
    _, states = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), 2000))
    grid = np.asarray(states.grid)
    door = np.argwhere(grid[..., TYPE] == DOOR)
    split, door_y = door[:, 1], door[:, 2]
    assert set(np.unique(split)) == {2, 3, 4, 5} and set(np.unique(door_y)) == {1, 2, 3, 4, 5}
    # roughly uniform, like minigrid's _rand_int
    assert np.bincount(split)[2:].min() > 400 and np.bincount(door_y)[1:].min() > 320
    keys = np.argwhere(grid[..., TYPE] == KEY)
    assert (keys[:, 1] < split).all()
    assert (np.asarray(states.agent_pos)[:, 0] < split).all()
    assert (grid[:, 6, 6, TYPE] == GOAL).all()
    assert (grid[door[:, 0], door[:, 1], door[:, 2], 2] != OPEN).all()
    assert not (np.asarray(states.agent_pos) == keys[:, 1:]).all(1).any()


def test_action_enum_matches_minigrid():
    from minigrid.core.actions import Actions

    assert [a.name for a in Action] == [a.name.upper() for a in Actions]
