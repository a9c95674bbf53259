"""Transition-for-transition agreement with Farama minigrid, from imported states."""

import functools
import re

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


def _family_first(ids):
    """Every id, the first of each family (and version) in the default run, the others slow."""
    seen, out = set(), []
    for env_id in ids:
        family = (re.match(r"[A-Za-z]+", env_id.split("-")[1]).group(), env_id[-2:])
        out.append(env_id if family not in seen else pytest.param(env_id, marks=pytest.mark.slow))
        seen.add(family)
    return out


# Dynamic-Obstacles moves its balls with its own RNG; tested below given minigrid's moves
STATIC_IDS = [e for e in GRID_IDS if "Dynamic-Obstacles" not in e]


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


@pytest.mark.parametrize("env_id", _family_first(STATIC_IDS))
def test_random_actions_match_minigrid(env_id):
    rng = np.random.default_rng(0)
    ref = gym.make(env_id)
    steps = 0
    for ep in range(300):  # until ~1500 steps: some families end on toggle / done within a few steps
        ref.reset(seed=ep)
        # favour forward / pickup / toggle so doors open and keys move
        actions = rng.choice(7, size=400, p=[0.12, 0.12, 0.34, 0.14, 0.08, 0.14, 0.06])
        _compare(env_id, ref, actions)
        steps += ref.unwrapped.step_count
        if steps > 1500 and ep >= 5:
            break
    assert steps > 300


DIRS = [(1, 0), (0, 1), (-1, 0), (0, -1)]


def _plan_to_face(base, target_pred):
    """Shortest left/right/forward plan (BFS over minigrid's state) to face a cell with target_pred."""
    from collections import deque

    start = (tuple(base.agent_pos), base.agent_dir)
    prev = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        pos, d = node
        front = (pos[0] + DIRS[d][0], pos[1] + DIRS[d][1])
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


def _solve_doorkey(ref):
    """A scripted MiniGrid-DoorKey solution: fetch the key, open the door, walk onto the goal."""
    base = ref.unwrapped

    def cell_is(kind):
        return lambda p: (c := base.grid.get(*p)) is not None and c.type == kind

    actions = []
    for kind, act in (("key", 3), ("door", 5)):
        plan = _plan_to_face(base, cell_is(kind)) + [act]
        for a in plan:
            ref.step(a)
        actions += plan
    return actions + _plan_to_face(base, cell_is("goal")) + [2]


def _is(base, kind, color=None, locked=None):
    """A predicate on cells: object ``kind`` (of ``color``; a door locked or not)."""
    def pred(p):
        c = base.grid.get(*p)
        return (c is not None and c.type == kind and (color is None or c.color == color)
                and (locked is None or (c.type == "door" and not c.is_open and c.is_locked == locked)))
    return pred


def _face_and(ref, pred, action, actions):
    """Walk to face a cell with ``pred`` (opening closed doors on the way when needed), then act."""
    base = ref.unwrapped
    while True:
        try:
            plan = _plan_to_face(base, pred) + [action]
            break
        except AssertionError:  # behind a closed door: open the nearest one first
            plan = _plan_to_face(base, _is(base, "door", locked=False)) + [Action.TOGGLE]
            for a in plan:
                ref.step(int(a))
            actions += plan
    for a in plan:
        ref.step(int(a))
    actions += plan


def _drop_aside(ref, actions):
    """Turn (at least once: not back where it came from) to an empty front cell and drop there."""
    base = ref.unwrapped
    ref.step(Action.LEFT)
    actions.append(Action.LEFT)
    while base.grid.get(*base.front_pos) is not None:
        ref.step(Action.LEFT)
        actions.append(Action.LEFT)
    ref.step(Action.DROP)
    actions.append(Action.DROP)


def _solve(env_id, ref):
    """Scripted solutions: open doors, fetch keys (from boxes, past blocking balls), reach the goal."""
    base, actions = ref.unwrapped, []
    if "ObstructedMaze" in env_id:
        if base.blocked:
            _face_and(ref, _is(base, "ball", "green"), Action.PICKUP, actions)
            _drop_aside(ref, actions)
        if base.key_in_box:
            _face_and(ref, _is(base, "box"), Action.TOGGLE, actions)
        _face_and(ref, _is(base, "key"), Action.PICKUP, actions)
        _face_and(ref, _is(base, "door", locked=True), Action.TOGGLE, actions)
        _drop_aside(ref, actions)  # the key: hands must be free for the ball
        _face_and(ref, _is(base, "ball", "blue"), Action.PICKUP, actions)
        return actions
    if "LockedRoom" in env_id:
        _face_and(ref, _is(base, "key"), Action.PICKUP, actions)
        _face_and(ref, _is(base, "door", locked=True), Action.TOGGLE, actions)
    _face_and(ref, _is(base, "goal"), Action.FORWARD, actions)
    return actions


@pytest.mark.parametrize("env_id", ["MiniGrid-MultiRoom-N2-S4-v0", "MiniGrid-MultiRoom-N4-S5-v1",
                                    "MiniGrid-LockedRoom-v0", "MiniGrid-ObstructedMaze-1Dl-v0",
                                    "MiniGrid-ObstructedMaze-1Dlh-v0", "MiniGrid-ObstructedMaze-1Dlhb-v0"])
def test_scripted_solutions_match_minigrid(env_id):
    """Whole solutions (doors opened, keys taken from boxes, blocking balls moved, goals reached)
    give minigrid's observations, rewards and terminations step for step."""
    solved = 0
    for seed in range(4):
        ref = gym.make(env_id)
        ref.reset(seed=seed)
        try:
            solution = _solve(env_id, ref)
        except AssertionError:  # a dropped ball may wall the agent in: minigrid's problem, not ours
            continue
        ref.reset(seed=seed)
        events = _compare(env_id, ref, solution)
        assert "success" in events, (env_id, seed)
        solved += 1
    assert solved >= 3


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
        for ep in range(2):
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


@functools.cache
def _reset_many(env_id, n):
    """``n`` fresh layouts of ``env_id`` (cached: several tests read the same batch)."""
    _, states = jax.jit(jax.vmap(E.make(env_id).reset))(jax.random.split(jax.random.PRNGKey(0), n))
    return jax.tree.map(np.asarray, states)


def _cell_codes(grid):
    """One integer per cell for its (object, colour, state)."""
    grid = grid.astype(np.int64)
    return grid[..., 0] * 64 + grid[..., 1] * 8 + grid[..., 2]


@functools.cache
def _minigrid_layouts(env_id, n):
    """Cell codes ``[n, W, H]`` and agent (x, y, dir) ``[n, 3]`` of minigrid's first ``n`` seeds."""
    ref = gym.make(env_id)
    grids, agent = [], []
    for seed in range(n):
        ref.reset(seed=seed)
        grids.append(_cell_codes(ref.unwrapped.grid.encode()))
        agent.append((*ref.unwrapped.agent_pos, ref.unwrapped.agent_dir))
    return np.stack(grids), np.array(agent)


def _assert_marginals_match(env_id, states, distinct):
    """Per-cell frequencies of each (object, colour, state) and the agent's start distribution of
    ``states`` agree with minigrid's generator (``distinct``: how many independent layouts they hold)."""
    n = 300
    ref_grids, ref_agent = _minigrid_layouts(env_id, n)
    ours = _cell_codes(np.asarray(states.grid))
    for obj in np.unique(np.concatenate([np.unique(ours), np.unique(ref_grids)])):
        p_ours = (ours == obj).mean(0)
        p_ref = (ref_grids == obj).mean(0)
        # 5 standard errors of a difference of two frequencies (hundreds of cells are compared)
        pooled = (p_ours + p_ref) / 2
        tol = 5 * np.sqrt(pooled * (1 - pooled) * (1 / n + 1 / distinct)) + 0.01
        assert (np.abs(p_ours - p_ref) <= tol).all(), (env_id, int(obj))
    agent = np.concatenate([np.asarray(states.agent_pos), np.asarray(states.agent_dir)[:, None]], 1)
    for col in range(3):
        a = np.bincount(agent[:, col], minlength=32) / len(agent)
        b = np.bincount(ref_agent[:, col], minlength=32) / len(ref_agent)
        assert np.abs(a - b).max() < 0.12, (env_id, col)


@pytest.mark.parametrize("env_id", _family_first(GRID_IDS))
def test_layout_marginals_match_minigrid(env_id):
    _assert_marginals_match(env_id, _reset_many(env_id, 1200), 1200)


@pytest.mark.parametrize("env_id", ["MiniGrid-KeyCorridorS3R3-v0",
                                    pytest.param("MiniGrid-FourRooms-v0", marks=pytest.mark.slow)])
def test_optimistic_reset_keeps_layout_marginals(env_id):
    """Episodes started by the optimistic reset (ratio 4: 16 layouts for 64 envs per step) have
    minigrid's layout marginals, within the same tolerance as exact resets, counting distinct layouts."""
    from plastix.envs.optimistic_reset import OptimisticReset

    env = OptimisticReset(E.make(env_id, max_steps=1), 4)  # every step ends every episode
    batch, steps = 64, 75

    def body(state, key):
        k_act, k_env = jax.random.split(key)
        action = jax.random.randint(k_act, (batch,), 0, env.action_space.n)
        _, state, _, _, truncated, _ = env.step_batch(jax.random.split(k_env, batch), state, action)
        return state, (state, truncated)

    state = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), batch))[1]
    _, (starts, truncated) = jax.jit(lambda s: jax.lax.scan(body, s, jax.random.split(
        jax.random.PRNGKey(2), steps)))(state)
    assert bool(truncated.all())
    grids = np.asarray(starts.grid)
    # the i-th ended env takes layout i mod 16: envs i and i + 16 share one, the first 16 are distinct
    np.testing.assert_array_equal(grids[:, :16], grids[:, 16:32])
    assert len({g.tobytes() for g in grids[0, :16]}) == 16
    flat = jax.tree.map(lambda x: np.asarray(x).reshape((-1,) + x.shape[2:]), starts)
    _assert_marginals_match(env_id, flat, steps * 16)


@pytest.mark.parametrize("env_id", [e for e in GRID_IDS if "Dynamic-Obstacles" in e])
def test_dynamic_obstacles_match_minigrid_given_its_ball_moves(env_id):
    """The agent's step, reward and termination, given where minigrid's balls went."""
    from plastix.envs.grid.dynamics import move

    env = E.make(env_id)
    rng = np.random.default_rng(0)
    ref = gym.make(env_id)
    outcomes = set()
    for ep in range(6):
        ref.reset(seed=ep)
        state = from_minigrid(ref)
        state = state.replace(objects=jax.numpy.asarray(
            [b.cur_pos for b in ref.unwrapped.obstacles], jax.numpy.int32))
        for _ in range(60):
            a = int(rng.choice([0, 1, 2, 2, 2, 5]))
            obs, r, term, trunc, _ = ref.step(a)
            before = state
            # the balls' new cells (left / right / forward never change the grid themselves)
            balls = before.replace(grid=from_minigrid(ref).grid)
            nxt, tr = move(balls, jax.numpy.where(a >= 3, 0, a))
            r2, term2, _ = env.rules(nxt, tr, env.max_steps, before)
            assert nxt.agent_pos.tolist() == list(ref.unwrapped.agent_pos)
            assert abs(float(r2) - r) < 1e-6 and bool(term2) == term
            assert np.array_equal(np.asarray(env.observe(nxt)), obs["image"])
            state = nxt
            if term or trunc:
                outcomes.add(r)
                break
    assert outcomes


def test_ball_moves_are_uniform_over_free_neighbours():
    from plastix.envs.grid.layouts.dynamic_obstacles import move_obstacles

    env = E.make("MiniGrid-Dynamic-Obstacles-8x8-v0")
    _, state = env.reset(jax.random.PRNGKey(0))
    keys = jax.random.split(jax.random.PRNGKey(1), 4000)
    moved = jax.vmap(move_obstacles, in_axes=(0, None))(keys, state)
    first = np.asarray(moved.objects[:, 0])
    start = np.asarray(state.objects[0])
    grid = np.asarray(state.grid[..., 0])
    free = {(x, y) for x in range(start[0] - 1, start[0] + 2) for y in range(start[1] - 1, start[1] + 2)
            if grid[x, y] == 1 and (x, y) != tuple(np.asarray(state.agent_pos))}
    seen, counts = np.unique(first, axis=0, return_counts=True)
    assert {tuple(p) for p in seen} == free
    assert counts.min() > 0.6 * counts.mean()
    # the ball left its old cell and nothing else was lost
    assert (np.asarray(moved.grid[..., 0]) == 6).sum(axis=(1, 2)).tolist() == [4] * 4000


@pytest.mark.parametrize("env_id", ["MiniGrid-GoToDoor-5x5-v0", "MiniGrid-GoToDoor-8x8-v0"])
def test_gotodoor_success_and_mission_match_minigrid(env_id):
    from plastix.envs.grid.missions import describe

    for seed in range(4):
        ref = gym.make(env_id)
        ref.reset(seed=seed)
        assert describe(from_minigrid(ref).mission) == ref.unwrapped.mission
        target = tuple(ref.unwrapped.target_pos)
        plan = _plan_to_face(ref.unwrapped, lambda p, t=target: p == t)
        events = _compare(env_id, ref, plan + [Action.DONE])
        assert "success" in events


def test_redbluedoors_mission_round_trip():
    from plastix.envs.grid.missions import describe

    ref = gym.make("MiniGrid-RedBlueDoors-6x6-v0")
    ref.reset(seed=0)
    assert describe(from_minigrid(ref).mission) == ref.unwrapped.mission
    env = E.make("MiniGrid-RedBlueDoors-6x6-v0")
    _, state = env.reset(jax.random.PRNGKey(0))
    assert describe(state.mission) == ref.unwrapped.mission


@pytest.mark.parametrize("env_id", _family_first([e for e in GRID_IDS if any(
    k in e for k in ("GoToDoor", "GoToObject", "Fetch", "RedBlueDoors", "Memory", "PutNear", "Unlock",
                       "KeyCorridor", "LockedRoom", "ObstructedMaze"))]))
def test_missions_are_minigrid_sentences(env_id):
    """Our layouts' integer missions read as sentences minigrid's mission space accepts, and an
    imported minigrid mission reads back as minigrid's own sentence."""
    from plastix.envs.grid.missions import describe

    ref = gym.make(env_id)
    space = ref.unwrapped.observation_space["mission"]
    for m in _reset_many(env_id, 1200).mission[:20]:
        assert space.contains(describe(m)), describe(m)
    for seed in range(5):
        ref.reset(seed=seed)
        assert describe(from_minigrid(ref).mission) == ref.unwrapped.mission
