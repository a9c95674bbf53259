"""plastix's Asterix against the reference minatar 1.0.15: lockstep runs fed the reference's recorded
draws, injected reference states in rare branches, and the distributions of ``draw_step``."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minatar import Environment
from scipy import stats

from plastix.envs.minatar.asterix import GAME, AsterixDraws, AsterixState
from plastix.envs.minatar.game import random_words
from tests.envs.minatar.recording import Call, recorded_env

SPEEDS = [(10, 5), (9, 5), (8, 4), (7, 4), (6, 3), (5, 3), (4, 2), (3, 2), (2, 1), (1, 1)]  # (spawn, move)
NO_DRAWS = AsterixDraws(right=jnp.asarray(False), gold=jnp.asarray(False), rank=jnp.asarray(0, jnp.int32))


@functools.cache
def _step(ramping: bool):
    return jax.jit(lambda state, action, draws: GAME.step(state, action, draws, ramping))


@functools.cache
def _observe():
    return jax.jit(GAME.observe)


@functools.cache
def _replay(ramping: bool):
    """Steps the game through a recorded run: ``resets[t]`` restarts the episode before step ``t``."""

    def body(state, inputs):
        action, draws, restart = inputs
        state = jax.tree.map(
            lambda fresh, s: jnp.where(restart, fresh, s), GAME.reset(GAME.draw_reset(None)), state
        )
        state, reward, terminal = GAME.step(state, action, draws, ramping)
        return state, (GAME.observe(state), reward, terminal, state.ramp_index)

    return jax.jit(
        lambda actions, draws, resets: jax.lax.scan(body, GAME.reset(None), (actions, draws, resets))[1]
    )


def _draws(calls: list[Call]) -> tuple[bool, bool, int]:
    """``(right, gold, rank)`` from the game's calls of one ``act()``: none, or a spawn's 2 or 3."""
    if not calls:
        return False, False, 0
    assert [c.method for c in calls[:2]] == ["rand", "rand"] and all(c.args == () for c in calls[:2])
    right, gold = bool(calls[0].value < 1 / 2), bool(calls[1].value < 1 / 3)
    if len(calls) == 2:
        return right, gold, 0
    assert len(calls) == 3 and calls[2].method == "randint" and len(calls[2].args) == 1
    return right, gold, int(calls[2].value)


def _as_draws(right, gold, rank) -> AsterixDraws:
    return AsterixDraws(
        right=jnp.asarray(right, jnp.bool_),
        gold=jnp.asarray(gold, jnp.bool_),
        rank=jnp.asarray(rank, jnp.int32),
    )


def _dodging_action(game, rng: np.random.Generator) -> int:
    """A move that no enemy reaches this step (ignoring spawns), else any: lets episodes run to high ramps."""
    moves = {0: (0, 0), 1: (-1, 0), 2: (0, -1), 3: (1, 0), 4: (0, 1)}
    safe = []
    for a, (dx, dy) in moves.items():
        px, py = min(9, max(0, game.player_x + dx)), min(8, max(1, game.player_y + dy))
        hit = False
        for e in game.entities:
            if e is not None and not e[3] and e[1] == py:
                ahead = e[0] + (1 if e[2] else -1) if game.move_timer == 0 else e[0]
                hit |= px in (e[0], ahead)
        if not hit:
            safe.append(a)
    return int(rng.choice(safe)) if safe else int(rng.integers(6))


def _record(seed: int, n_steps: int, sticky: float, ramping: bool, dodge: bool = False):
    """Runs the reference with random (or dodging) actions and auto-reset; returns the executed actions,
    the draws, the restart flags and every step's observation, reward, terminal and ramp index."""
    env, rec = recorded_env("asterix", seed, sticky, ramping)
    env.reset()
    assert rec.take() == []
    rng = np.random.default_rng(seed)
    last = 0
    out = {k: [] for k in ("action", "right", "gold", "rank", "reset", "obs", "reward", "terminal", "ramp")}
    restart = False
    for _ in range(n_steps):
        if restart:
            env.reset()
            assert rec.take() == []
        chosen = _dodging_action(env.env, rng) if dodge and rng.random() < 0.8 else int(rng.integers(6))
        reward, terminal = env.act(chosen)
        calls = rec.take()
        assert calls[0].method == "rand"
        last = last if calls[0].value < sticky else chosen
        right, gold, rank = _draws(calls[1:])
        for k, v in zip(
            out,
            (last, right, gold, rank, restart, env.state(), reward, terminal, env.env.ramp_index),
            strict=True,
        ):
            out[k].append(v)
        restart = terminal
    return {k: np.asarray(v) for k, v in out.items()}


def _check_lockstep(seed: int, n_steps: int, sticky: float, ramping: bool, dodge: bool = False) -> dict:
    ref = _record(seed, n_steps, sticky, ramping, dodge)
    draws = _as_draws(ref["right"], ref["gold"], ref["rank"])
    obs, reward, terminal, _ = jax.device_get(
        _replay(ramping)(jnp.asarray(ref["action"], jnp.int32), draws, jnp.asarray(ref["reset"]))
    )
    bad = np.flatnonzero(
        (obs != ref["obs"]).any(axis=(1, 2, 3)) | (reward != ref["reward"]) | (terminal != ref["terminal"])
    )
    assert bad.size == 0, f"seed {seed}: first mismatch at step {bad[0]} of {n_steps}"
    return ref


def test_reset_matches_reference():
    env = Environment("asterix")
    env.reset()
    state = GAME.reset(GAME.draw_reset(jax.random.key(0)))
    np.testing.assert_array_equal(np.asarray(_observe()(state)), env.state())
    _assert_same(state, GAME.from_minatar(env.env))


@pytest.mark.parametrize(
    "seed,sticky,ramping,dodge", [(0, 0.1, True, False), (1, 0.0, False, False), (2, 0.1, True, True)]
)
def test_lockstep(seed, sticky, ramping, dodge):
    ref = _check_lockstep(seed, 1500, sticky, ramping, dodge)
    assert ref["terminal"].sum() >= 3 and ref["reward"].sum() >= 5  # several episodes, gold collected
    if ramping:
        assert ref["ramp"].max() >= (3 if dodge else 1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10, 15))
@pytest.mark.parametrize("sticky,ramping,dodge", [(0.1, True, False), (0.0, False, False), (0.1, True, True)])
def test_lockstep_long(seed, sticky, ramping, dodge):
    _check_lockstep(seed, 10_000, sticky, ramping, dodge)


# --- perturb and inject -------------------------------------------------------------------------------


class ScriptedRandom:
    """A stand-in for the reference's ``RandomState`` that returns chosen values: ``rand`` pops
    ``uniforms`` (then 0.99), ``randint(n)`` returns ``rank % n``; every call is logged."""

    def __init__(self, uniforms=(), rank: int = 0):
        self.uniforms, self.rank, self.calls = list(uniforms), rank, []

    def rand(self):
        value = self.uniforms.pop(0) if self.uniforms else 0.99
        self.calls.append(Call("rand", (), {}, value))
        return value

    def randint(self, n):
        value = self.rank % n
        self.calls.append(Call("randint", (n,), {}, value))
        return value


def _canonical(state: AsterixState) -> dict:
    s = jax.device_get(state)
    out = {k: np.asarray(v) for k, v in vars(s).items()}
    for k in ("x", "right", "gold"):
        out[k] = np.where(out["active"], out[k], 0)
    return out


def _assert_same(mine: AsterixState, theirs: AsterixState) -> None:
    a, b = _canonical(mine), _canonical(theirs)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _inject(setup, action: int, ramping: bool = True, uniforms=(0.2, 0.2), rank: int = 0):
    """Sets up a reference game, steps it and plastix's from the imported state with the same draws and
    checks they agree (full state, observation, reward, terminal); returns the game calls and the result."""
    env = Environment("asterix", sticky_action_prob=0.0, difficulty_ramping=ramping)
    game = env.env
    game.reset()
    setup(game)
    game.random = ScriptedRandom(uniforms, rank)
    state = GAME.from_minatar(game)
    np.testing.assert_array_equal(np.asarray(_observe()(state)), game.state())
    ref_reward, ref_terminal = game.act(action)
    calls = game.random.calls
    new, reward, terminal = _step(ramping)(state, jnp.asarray(action, jnp.int32), _as_draws(*_draws(calls)))
    _assert_same(new, GAME.from_minatar(game))
    np.testing.assert_array_equal(np.asarray(_observe()(new)), game.state())
    assert float(reward) == ref_reward and bool(terminal) == ref_terminal
    return calls, new, float(reward), bool(terminal)


def _fill(game, free=(), right=False, gold=False, x=4):
    game.entities = [None if i in free else [x, i + 1, right, gold] for i in range(8)]


def test_full_rows_spawn_nothing():
    def setup(game):
        _fill(game, x=3, gold=True)
        game.player_y, game.player_x = 1, 9
        game.spawn_timer = 0

    calls, new, _, _ = _inject(setup, 0)
    assert [c.method for c in calls] == ["rand", "rand"]  # both uniforms, no slot
    assert bool(np.all(new.active))


@pytest.mark.parametrize("free_slot", [0, 5, 7])
@pytest.mark.parametrize("uniforms", [(0.1, 0.1), (0.7, 0.5)])
def test_one_free_slot(free_slot, uniforms):
    def setup(game):
        _fill(game, free=(free_slot,), x=6)
        game.player_y, game.player_x = (2 if free_slot == 0 else 1), 5
        game.spawn_timer = 0

    calls, new, _, _ = _inject(setup, 0, uniforms=uniforms)
    assert calls[2].args == (1,)
    assert bool(new.active[free_slot]) and int(new.x[free_slot]) == (0 if uniforms[0] < 0.5 else 9)


@pytest.mark.parametrize("rank", range(3))
def test_spawn_rank_picks_free_slot_in_order(rank):
    def setup(game):
        _fill(game, free=(1, 4, 6))
        game.player_y = 8
        game.spawn_timer = 0

    calls, new, _, _ = _inject(setup, 0, rank=rank)
    assert calls[2].args == (3,) and bool(new.active[(1, 4, 6)[rank]])


@pytest.mark.parametrize("index", range(10))
@pytest.mark.parametrize("ramping", [True, False])
def test_ramp_step(index, ramping):
    def setup(game):
        game.ramp_index = min(index, 8)
        game.spawn_speed, game.move_speed = SPEEDS[index]
        game.spawn_timer, game.move_timer = 3, 3
        game.ramp_timer = -1

    _, new, _, _ = _inject(setup, 0, ramping=ramping)
    expected = SPEEDS[min(index + 1, 9)] if ramping else SPEEDS[index]
    assert (int(new.spawn_speed), int(new.move_speed)) == expected


def test_ramps_land_on_schedule():
    """From a reset, entities cleared after each step: ramps at steps 102, 204, ..., 918 and then none."""

    def body(state, _):
        state, _, _ = GAME.step(state, jnp.asarray(0), NO_DRAWS, True)
        state = state.replace(active=jnp.zeros(8, jnp.bool_))
        return state, (state.ramp_index, state.spawn_speed, state.move_speed)

    index, spawn, move = jax.device_get(jax.lax.scan(body, GAME.reset(None), length=1200)[1])
    ramps = np.flatnonzero(np.diff(index, prepend=0)) + 1
    assert ramps.tolist() == [102 * k for k in range(1, 10)]
    assert list(zip(spawn[ramps - 1].tolist(), move[ramps - 1].tolist(), strict=True)) == SPEEDS[1:]
    assert not GAME.step(GAME.reset(None), jnp.asarray(0), NO_DRAWS, True)[0].terminal


@pytest.mark.parametrize("offset", [-2, -1, 0, 1, 2])
@pytest.mark.parametrize("right", [True, False])
@pytest.mark.parametrize("action", [0, 1, 3])
@pytest.mark.parametrize("move_timer", [0, 1])
@pytest.mark.parametrize("gold", [True, False])
def test_collisions_before_and_after_move(offset, right, action, move_timer, gold):
    """An entity near the player on its row, moving this step or not, the player moving or not."""

    def setup(game):
        game.player_x, game.player_y = 5, 4
        game.entities = [None] * 8
        game.entities[3] = [5 + offset, 4, right, gold]
        game.entities[0] = [2, 1, True, False]
        game.move_timer = move_timer

    _inject(setup, action)


def test_collision_cases_named():
    def enemy_ahead(game):  # the player walks into it before it moves
        game.player_x, game.player_y, game.move_timer = 5, 4, 2
        game.entities[3] = [4, 4, False, False]

    def enemy_arrives(game):  # it moves onto the standing player
        game.player_x, game.player_y, game.move_timer = 5, 4, 0
        game.entities[3] = [4, 4, True, False]

    def gold_arrives(game):
        enemy_arrives(game)
        game.entities[3][3] = True

    def spawn_on_player(game):  # spawned at column 0 onto the player, before anything moves
        game.player_x, game.player_y, game.spawn_timer, game.move_timer = 0, 3, 0, 2
        _fill(game, free=(2,))

    def leaves_screen(game):
        game.move_timer = 0
        game.entities[0], game.entities[7] = [9, 1, True, True], [0, 8, False, False]

    assert _inject(enemy_ahead, 1)[2:] == (0.0, True)
    assert _inject(enemy_arrives, 0)[2:] == (0.0, True)
    assert _inject(gold_arrives, 0)[2:] == (1.0, False)
    assert _inject(spawn_on_player, 0, uniforms=(0.1, 0.1))[2:] == (1.0, False)
    assert _inject(spawn_on_player, 0, uniforms=(0.1, 0.5))[2:] == (0.0, True)
    _, new, _, _ = _inject(leaves_screen, 0)
    assert not bool(new.active[0]) and not bool(new.active[7])


def test_terminal_absorbs():
    def setup(game):
        game.terminal = True
        game.spawn_timer, game.move_timer = 0, 0
        game.entities[2] = [5, 3, True, True]

    calls, new, reward, terminal = _inject(setup, 3)
    assert calls == [] and reward == 0.0 and terminal


entity = st.one_of(st.none(), st.tuples(st.integers(0, 9), st.booleans(), st.booleans()))


@settings(max_examples=150, deadline=None)
@given(
    player=st.tuples(st.integers(0, 9), st.integers(1, 8)),
    entities=st.lists(entity, min_size=8, max_size=8),
    speeds=st.tuples(st.integers(1, 10), st.integers(1, 5)),
    timers=st.tuples(st.integers(0, 10), st.integers(0, 5), st.integers(-1, 100), st.integers(0, 8)),
    action=st.integers(0, 5),
    ramping=st.booleans(),
    uniforms=st.tuples(st.floats(0, 1, exclude_max=True), st.floats(0, 1, exclude_max=True)),
    rank=st.integers(0, 7),
)
def test_random_injected_states(player, entities, speeds, timers, action, ramping, uniforms, rank):
    """Any state with timers in range steps as the reference does, whatever it draws."""

    def setup(game):
        game.player_x, game.player_y = player
        game.entities = [None if e is None else [e[0], i + 1, e[1], e[2]] for i, e in enumerate(entities)]
        game.spawn_speed, game.move_speed = speeds
        game.spawn_timer = min(timers[0], speeds[0])
        game.move_timer = min(timers[1], speeds[1])
        game.ramp_timer, game.ramp_index = timers[2], timers[3]

    _inject(setup, action, ramping=ramping, uniforms=uniforms, rank=rank)


@functools.cache
def _rollout(ramping: bool):
    def body(state, inputs):
        key, action = inputs
        new, reward, terminal = GAME.step(state, action, GAME.draw_step(key, state), ramping)
        return new, (state, new, GAME.observe(new), reward, terminal)

    return jax.jit(lambda keys, actions: jax.lax.scan(body, GAME.reset(None), (keys, actions))[1])


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ramping=st.booleans())
def test_rollout_properties(seed, ramping):
    """With plastix's own draws: one player, at most one entity per row, rewards 0 or 1 (never on the
    ending step), and a terminal state never changes again."""
    rng = np.random.default_rng(seed)
    keys = jax.random.split(jax.random.key(seed), 400)
    before, after, obs, reward, terminal = jax.device_get(_rollout(ramping)(keys, rng.integers(0, 6, 400)))
    assert (obs[..., 0].sum(axis=(1, 2)) == 1).all()
    assert (obs[..., 1].sum(axis=2) + obs[..., 3].sum(axis=2)).max() <= 1
    assert not obs[:, [0, 9], :, 1:].any()
    assert set(np.unique(reward)) <= {0.0, 1.0} and not (reward * terminal).any()
    done = np.asarray(before.terminal)
    for k, v in vars(after).items():
        np.testing.assert_array_equal(np.asarray(v)[done], np.asarray(getattr(before, k))[done], err_msg=k)
    assert (reward[done] == 0).all() and terminal[done].all()


# --- draw distributions -------------------------------------------------------------------------------

N_DRAWS = 30_000
FREE = (1, 4, 6)


def _three_free_state(spawn_timer: int = 0) -> AsterixState:
    env = Environment("asterix")
    _fill(env.env, free=FREE, x=4)
    env.env.player_x, env.env.player_y = 9, 1  # on a full row, in no entity's way
    env.env.spawn_timer = spawn_timer
    return GAME.from_minatar(env.env)


def _reference_spawns(n: int, seed: int) -> np.ndarray:
    """``(right, gold, slot)`` of ``n`` reference spawns from the three-free-slot state."""
    env = Environment("asterix")
    env.env.random = np.random.RandomState(seed)
    out = np.empty((n, 3), np.int64)
    for i in range(n):
        _fill(env.env, free=FREE, x=4)
        env.env._spawn_entity()
        slot = next(s for s in FREE if env.env.entities[s] is not None)
        _, _, right, gold = env.env.entities[slot]
        out[i] = right, gold, slot
    return out


@functools.cache
def _plastix_spawns(n: int, seed: int) -> np.ndarray:
    """The same from plastix: ``draw_step`` and ``step`` on the three-free-slot state."""
    state = _three_free_state()

    def one(key):
        new, _, _ = GAME.step(state, jnp.asarray(0), GAME.draw_step(key, state), True)
        placed = new.active & ~state.active
        return jnp.stack([jnp.any(placed & new.right), jnp.any(placed & new.gold), jnp.argmax(placed)])

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(seed), n)))


def test_draw_step_marginals():
    ours = _plastix_spawns(N_DRAWS, 0)
    for column, probs in ((0, [1 / 2, 1 / 2]), (1, [2 / 3, 1 / 3])):
        counts = np.bincount(ours[:, column], minlength=2)
        assert stats.chisquare(counts, np.asarray(probs) * N_DRAWS).pvalue > 1e-3
    slots = np.bincount(ours[:, 2], minlength=8)
    assert slots[[0, 2, 3, 5, 7]].sum() == 0  # only free slots
    assert stats.chisquare(slots[list(FREE)], np.full(3, N_DRAWS / 3)).pvalue > 1e-3


def test_draw_step_against_reference():
    """The joint (side, gold, slot) frequencies of plastix and the reference: one distribution."""
    ours, theirs = _plastix_spawns(N_DRAWS, 1), _reference_spawns(N_DRAWS // 2, 1)
    code = lambda s: s[:, 0] * 6 + s[:, 1] * 3 + np.searchsorted(FREE, s[:, 2])
    table = np.stack([np.bincount(code(ours), minlength=12), np.bincount(code(theirs), minlength=12)])
    assert table.min() > 100
    assert stats.chi2_contingency(table).pvalue > 1e-3


def test_draw_step_rank_is_exact_over_free_slots():
    """rank = floor(word * n_free / 2**32) for every count of free slots (and 0 with none free)."""
    keys = jax.random.split(jax.random.key(3), 4000)
    bits = np.asarray(jax.vmap(lambda k: random_words(k, 2))(keys)).astype(np.uint64)
    ranks_for = jax.jit(
        jax.vmap(
            lambda k, n: GAME.draw_step(k, GAME.reset(None).replace(active=jnp.arange(8) >= n)).rank,
            in_axes=(0, None),
        )
    )
    for n_free in range(9):
        ranks = np.asarray(ranks_for(keys, n_free))
        np.testing.assert_array_equal(ranks, (bits[:, 1] * n_free) >> 32)
        if n_free > 1:
            assert stats.chisquare(np.bincount(ranks, minlength=n_free)).pvalue > 1e-3
    draws = jax.vmap(GAME.draw_step, in_axes=(0, None))(keys, GAME.reset(None))
    np.testing.assert_array_equal(np.asarray(draws.right), bits[:, 0] >= 2**31)
    np.testing.assert_array_equal(np.asarray(draws.gold), (bits[:, 0] % 2**31) * 3 < 2**31)  # u < 1/3
