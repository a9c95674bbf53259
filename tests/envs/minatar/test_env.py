"""The MinAtar env layer: sticky actions as the reference draws them (frequency, the last executed action
carried across auto-resets), the -v1 action map, the env end to end in lockstep with
``minatar.Environment`` (its own recorded draws injected), the step cap, bad input, the gymnasium
adapter, rendering, and MinAtar task mixes."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from minatar import Environment
from PIL import Image
from scipy.stats import chi2_contingency

from plastix.cli import envs_command, render_env
from plastix.envs import UnknownEnvError, list_envs, make
from plastix.envs.api import task_ids
from plastix.envs.gym_compat import GymEnv, GymVectorEnv
from plastix.envs.minatar import GAMES, MinAtarEnv, MinAtarError, MinAtarOptions
from plastix.envs.minatar.env import NO_LIMIT, load_game
from plastix.envs.minatar.game import random_words
from plastix.envs.minatar.render import cell_colours, palette, rgb
from plastix.envs.minatar.taskmix import MINATAR_TASKMIX_ID, union_channels
from plastix.envs.taskmix import TaskMixOptions
from plastix.run.config import ConfigError, RunConfig, validate
from tests.envs.minatar.recording import recorded_env


@dataclass(frozen=True, eq=False)
class Injected(MinAtarEnv):
    """A MinAtarEnv whose draws are given (the reference's, recorded) instead of drawn from the key."""

    sticky_u: Any = None
    step_draws: Any = None
    reset_draws: Any = None

    def draw(self, key, state):
        return self.sticky_u, self.step_draws, self.reset_draws

    def draw_reset(self, key):
        return self.reset_draws


def _injected(env: MinAtarEnv, **draws) -> Injected:
    return Injected(env.env_id, env.game, env.minimal, env.options, env.channels, **draws)


@functools.cache
def _env(env_id: str, sticky: float = 0.1, ramping: bool = True, max_steps: int = 0) -> MinAtarEnv:
    return make(env_id, options=MinAtarOptions(sticky, ramping, max_steps))


@functools.cache
def _injected_rollout(env_id: str, sticky: float, ramping: bool):
    """``rollout(first_reset_draws, actions [T], sticky_u [T], reset_draws [T]) -> (obs, final_obs, reward,
    terminated, truncated, last_action) [T]``: `MinAtarEnv.step` (auto-reset included) on given draws
    (``reset_draws[t]``: the reset that follows step ``t`` if it ends an episode), in one scan."""
    env = _env(env_id, sticky, ramping)

    def rollout(first, actions, us, resets):
        state = _injected(env, reset_draws=first).reset_env(jax.random.PRNGKey(0))

        def body(state, x):
            action, u, reset = x
            injected = _injected(env, sticky_u=u, step_draws=(), reset_draws=reset)
            obs, state, r, term, trunc, info = injected.step(jax.random.PRNGKey(0), state, action)
            return state, (obs, info["final_obs"], r, term, trunc, state.last_action)

        return env.observe(state), jax.lax.scan(body, state, (actions, us, resets))[1]

    return jax.jit(rollout)


# the reference's recorded calls of one reset as the game's draws (both games draw nothing per step but the
# sticky uniform), and a stand-in for steps that end no episode
RESET_DRAWS = {"breakout": lambda calls: np.int32(calls[0].value), "space_invaders": lambda calls: ()}
NO_RESET = {"breakout": np.int32(0), "space_invaders": ()}
RESET_CALLS = {"breakout": 1, "space_invaders": 0}


def _lockstep(game: str, minimal: bool, sticky: float, ramping: bool, seed: int, steps: int) -> int:
    """Run the reference with random actions and auto-resets, recording its draws, then `MinAtarEnv.step`
    on those draws; observation, final observation, reward, terminal, truncation and the last executed
    action (carried across resets) must agree at every step. Returns the episodes that ended."""
    env_id = f"MinAtar/{GAMES[game]}-v{int(minimal)}"
    env = _env(env_id, sticky, ramping)
    ref, rec = recorded_env(game, seed, sticky, ramping)
    ref.reset()
    calls = rec.take()
    assert len(calls) == RESET_CALLS[game]
    first, first_obs = RESET_DRAWS[game](calls), ref.state()
    rng = np.random.default_rng(seed)
    actions = rng.integers(env.action_space.n, size=steps).astype(np.int32)
    want = {k: [] for k in ("obs", "final", "reward", "terminal", "last_action")}
    us, resets = [], []
    for action in actions:
        reward, terminal = ref.act(env.actions[action])
        calls = rec.take()
        assert len(calls) == 1 and calls[0].method == "rand" and calls[0].args == ()  # the sticky draw
        us.append(calls[0].value)
        want["final"].append(ref.state())
        if terminal:
            ref.reset()
        resets.append(RESET_DRAWS[game](rec.take()) if terminal else NO_RESET[game])
        for k, v in (("obs", ref.state()), ("reward", reward), ("terminal", terminal),
                     ("last_action", ref.last_action)):
            want[k].append(v)
    resets = jax.tree.map(lambda *x: np.stack(x), *resets)  # () for a game whose resets draw nothing
    obs0, (obs, final, reward, term, trunc, last) = jax.device_get(_injected_rollout(env_id, sticky, ramping)(
        first, actions, np.asarray(us, np.float32), resets))
    np.testing.assert_array_equal(obs0, first_obs)
    got = {"obs": obs, "final": final, "reward": reward, "terminal": term, "last_action": last}
    for k, v in got.items():
        bad = np.flatnonzero((v != np.asarray(want[k])).reshape(steps, -1).any(-1))
        where = f"{env_id} sticky {sticky} ramping {ramping} seed {seed}"
        assert not len(bad), f"{where}: {k} differs first at step {bad[0]} of {steps}"
    assert not trunc.any()
    return int(np.sum(want["terminal"]))


@pytest.mark.parametrize("game, minimal, sticky, ramping", [("breakout", True, 0.1, True),
                                                             ("space_invaders", False, 0.1, True),
                                                             ("space_invaders", True, 0.0, False)])
def test_env_steps_in_lockstep_with_the_reference(game, minimal, sticky, ramping):
    episodes = _lockstep(game, minimal, sticky, ramping, seed=0, steps=3000)
    assert episodes >= 3  # auto-resets (and the last action carried through them) were exercised


@pytest.mark.slow
@pytest.mark.parametrize("game", ["breakout", "space_invaders"])
@pytest.mark.parametrize("seed", range(1, 6))
def test_env_lockstep_long(game, seed):
    _lockstep(game, True, 0.1, True, seed, steps=10_000)
    _lockstep(game, False, 0.0, False, seed, steps=3_000)


@functools.cache
def _jit(env_id: str, method: str, sticky: float = 0.1):
    return jax.jit(getattr(_env(env_id, sticky), method))


def _reference_sticky_count(sticky: float, n: int, seed: int = 0) -> int:
    """How many of ``n`` reference ``act`` calls repeated the last executed action (always asked for
    another one, so a repeat is a sticky draw)."""
    ref = Environment("breakout", sticky_action_prob=sticky)
    ref.seed(seed)
    ref.reset()
    count = 0
    for _ in range(n):
        before = ref.last_action
        ref.act(3 if before != 3 else 1)
        count += ref.last_action == before
    return count


def test_sticky_frequency_matches_the_reference():
    n = 20_000
    ref = _reference_sticky_count(0.1, n)
    env = _env("MinAtar/Breakout-v0", 0.1)
    state = _jit("MinAtar/Breakout-v0", "reset_env")(jax.random.PRNGKey(0)).replace(last_action=jnp.int32(1))

    @jax.jit
    def sticky(keys):  # per key: whether step_env ran the last action (1) instead of 3, and its draw
        return jax.vmap(lambda k: (env.step_env(k, state, jnp.int32(3))[0].last_action == 1,
                                   env.draw(k, state)[0]))(keys)

    repeated, u = map(np.asarray, sticky(jax.random.split(jax.random.PRNGKey(7), n)))
    ours = int(repeated.sum())
    assert chi2_contingency([[ours, n - ours], [ref, n - ref]])[1] > 1e-3, (ours, ref)
    np.testing.assert_array_equal(repeated, u < np.float32(0.1))  # a repeat is exactly a draw below p
    wrong = int((u < 0.13).sum())  # the test has the power to see a wrong probability
    assert chi2_contingency([[wrong, n - wrong], [ref, n - ref]])[1] < 1e-3, (wrong, ref)


def test_random_words_are_jaxs_threefry():
    """`random_words` unrolls jax.random's Threefry-2x32: its words of blocks 0..n-1 xor to jax's
    partitionable ``bits`` (which xors each block's two outputs); keys of other PRNGs use their own bits."""
    for key in (jax.random.PRNGKey(7), jax.random.key(123)):
        words = np.asarray(random_words(key, 10))
        with jax.threefry_partitionable(True):
            np.testing.assert_array_equal(words[:5] ^ words[5:], np.asarray(jax.random.bits(key, (5,))))
        np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(random_words, in_axes=(0, None)),
                                                         static_argnums=1)(key[None], 10))[0], words)
    rbg = jax.random.key(0, impl="rbg")
    np.testing.assert_array_equal(random_words(rbg, 3), jax.random.bits(rbg, (3,)))
    assert random_words(None, 0).shape == (0,)


@settings(max_examples=40, deadline=None)
@given(u=st.floats(0, 1, exclude_max=True, width=32), last=st.integers(0, 5), action=st.integers(0, 2))
def test_sticky_repeats_the_last_executed_action_below_p(u, last, action):
    state = _jit("MinAtar/Breakout-v1", "reset_env")(jax.random.PRNGKey(0))
    state = state.replace(last_action=jnp.int32(last))
    state, *_ = _jit("MinAtar/Breakout-v1", "advance")(state, jnp.int32(action), jnp.float32(u), ())
    assert int(state.last_action) == (last if u < 0.1 else (0, 1, 3)[action])  # the -v1 map: n, l, r


def test_last_action_is_carried_across_auto_reset():
    env = _env("MinAtar/Breakout-v0", sticky=0.0)
    state = _jit("MinAtar/Breakout-v0", "reset_env", 0.0)(jax.random.PRNGKey(1))
    assert int(state.last_action) == 0  # 0 only at the first reset
    state = state.replace(game=state.game.replace(terminal=jnp.bool_(True)), t=jnp.int32(17))  # a lost ball
    forced = _injected(env, sticky_u=jnp.float32(0.0), step_draws=())
    sticky = dataclasses.replace(forced, options=MinAtarOptions(sticky=0.5))

    @jax.jit
    def run(state, action):
        key = jax.random.PRNGKey(0)
        obs, new, _, term, trunc, _ = env.step(key, state, action)
        # the batched step (the training loop's) carries it too
        batched = env.step_batch(key[None], jax.tree.map(lambda x: x[None], state), action[None])[1]
        # the new episode's first step repeats it when the sticky draw says so
        repeat = (forced.step_env(key, new, jnp.int32(0))[0].last_action,
                  sticky.step_env(key, new, jnp.int32(0))[0].last_action)
        return obs, new, term, trunc, batched, repeat

    obs, new, term, trunc, batched, repeat = run(state, jnp.int32(3))
    assert term and not trunc
    assert int(new.last_action) == 3 and int(new.t) == 0 and not bool(new.game.terminal)
    np.testing.assert_array_equal(obs, env.observe(new))
    assert int(batched.last_action[0]) == 3 and int(batched.t[0]) == 0
    assert tuple(map(int, repeat)) == (0, 3)


@pytest.mark.parametrize("name", list(GAMES))
def test_action_sets_channels_and_v1_map(name):
    ref = Environment(name)
    game = load_game(name)
    assert game.channels == tuple(sorted(ref.env.channels, key=ref.env.channels.get))
    v0, v1 = make(f"MinAtar/{GAMES[name]}-v0"), make(f"MinAtar/{GAMES[name]}-v1")
    assert v0.action_space.n == 6 and v1.action_space.n == len(ref.minimal_action_set())
    assert v1.actions == tuple(ref.minimal_action_set()) and v0.actions == tuple(range(6))
    assert v1.observation_space.shape == tuple(ref.state_shape()) and v1.observation_space.dtype == jnp.bool_
    assert v1.max_steps == NO_LIMIT


@functools.cache
def _rollout(env_id: str, steps: int, max_steps: int = 0):
    env = _env(env_id, max_steps=max_steps)

    def run(key):
        state = env.reset(key)[1]

        def body(state, k):
            obs, state, reward, term, trunc, _ = env.step(k, state, jnp.int32(0))
            return state, (term, trunc, state.t)

        return jax.lax.scan(body, state, jax.random.split(key, steps))[1]

    return jax.jit(run)


def test_no_time_limit_but_freeways_own():
    term, trunc, _ = _rollout("MinAtar/Freeway-v1", 2_502)(jax.random.PRNGKey(0))
    assert not np.asarray(trunc).any()
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(term)), [2_500])  # the 2,501st step ends it


def test_step_cap_truncates():
    term, trunc, t = map(np.asarray, _rollout("MinAtar/Freeway-v1", 12, max_steps=5)(jax.random.PRNGKey(0)))
    assert not term.any()
    np.testing.assert_array_equal(np.flatnonzero(trunc), [4, 9])
    np.testing.assert_array_equal(t, [1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2])
    assert _env("MinAtar/Freeway-v1", max_steps=5).spec.max_steps == 5


def test_bad_input_fails_with_one_clear_error():
    with pytest.raises(UnknownEnvError, match=r"'MinAtar/Breakot-v1'.*Did you mean: MinAtar/Breakout-v1"):
        make("MinAtar/Breakot-v1")
    with pytest.raises(ConfigError, match=r"env: unknown env id 'MinAtar/SpaceInvader-v0'.*"
                                          r"MinAtar/SpaceInvaders-v0"):
        validate(RunConfig(env="MinAtar/SpaceInvader-v0"))
    for sticky in (1.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match=r"^minatar.sticky: .*\[0, 1\), got "):
            validate(RunConfig(env="MinAtar/Breakout-v1", minatar=MinAtarOptions(sticky=sticky)))
        with pytest.raises(MinAtarError, match=r"^minatar.sticky: "):
            make("MinAtar/Breakout-v1", options=MinAtarOptions(sticky=sticky))
    with pytest.raises(ConfigError, match=r"^minatar.max_steps: must be an integer >= 0"):
        validate(RunConfig(env="MinAtar/Breakout-v1", minatar=MinAtarOptions(max_steps=-1)))
    with pytest.raises(ConfigError, match=r"^minatar.sticky: expected float"):
        validate(RunConfig(env="MinAtar/Breakout-v1", minatar=MinAtarOptions(sticky="0.1")))
    with pytest.raises(ConfigError, match=r"^minatar: the MinAtar options apply to MinAtar/ and "
                                          r"TaskMix/MinAtar-v0 ids, not MiniGrid-DoorKey-5x5-v0"):
        validate(RunConfig(minatar=MinAtarOptions(sticky=0.0)))
    with pytest.raises(ConfigError, match=r"^minatar: .*not TaskMix/MiniGrid-v0"):
        grids = TaskMixOptions(tasks=("MiniGrid-Empty-5x5-v0", "MiniGrid-DoorKey-5x5-v0"))
        validate(RunConfig(env="TaskMix/MiniGrid-v0", minatar=MinAtarOptions(sticky=0.0), taskmix=grids))
    with pytest.raises(ConfigError, match=r"^taskmix: the task-mix options apply to "):
        validate(RunConfig(env="MinAtar/Breakout-v1", taskmix=TaskMixOptions(tasks=MIX)))
    gymnax = MinAtarOptions(sticky=0.0, max_steps=1000)
    config = validate(RunConfig(env="MinAtar/Breakout-v1", minatar=gymnax))
    assert config.minatar.max_steps == 1000


def test_gym_adapter():
    from gymnasium.utils.env_checker import check_env

    env = GymEnv("MinAtar/Breakout-v1")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert obs.shape == (10, 10, 4) and obs.dtype == bool and env.observation_space.contains(obs)
    assert env.action_space.n == 3
    for _ in range(500):  # play until the ball is lost: a reset() then keeps the last executed action
        _, reward, term, trunc, info = env.step(2)
        if term:
            break
    assert term and not trunc and info == {}
    env.reset()
    assert int(env._state.last_action) == 3 and int(env._state.t) == 0
    env.reset(seed=3)  # a seed starts afresh
    assert int(env._state.last_action) == 0
    venv = GymVectorEnv("MinAtar/SpaceInvaders-v0", num_envs=3, options=MinAtarOptions(max_steps=2))
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 10, 10, 6) and venv.observation_space.contains(obs)
    venv.step(np.zeros(3, int))
    obs, reward, term, trunc, info = venv.step(np.full(3, 5))
    assert trunc.all() and not term.any() and info["final_obs"].shape == (3, 10, 10, 6)


def _cubehelix(x: np.ndarray) -> np.ndarray:
    """Green's (2011) cubehelix with matplotlib's parameters (gamma 1, s 0.5, r -1.5, h 1), at the 256
    entries of its lookup table: the palette computed apart from matplotlib's colormap."""
    lam = np.floor(np.asarray(x) * 256).clip(0, 255) / 255
    phi = 2 * np.pi * (0.5 / 3 + -1.5 * lam)
    amp = 1.0 * lam * (1 - lam) / 2
    rgb_ = [lam + amp * (a * np.cos(phi) + b * np.sin(phi))
            for a, b in ((-0.14861, 1.78277), (-0.29227, -0.90649), (1.97294, 0.0))]
    return np.stack(rgb_, -1)


def test_render_uses_minatar_colours(tmp_path):
    for n in (4, 6, 10):
        want = np.concatenate([np.zeros((1, 3)), _cubehelix(np.linspace(0, 1, n + 2)[1:-1])]) * 255
        np.testing.assert_allclose(palette(n), want, atol=1.0)
        assert tuple(palette(n)[1]) == tuple(np.round(np.asarray(
            matplotlib.colormaps["cubehelix"](1 / (n + 1))[:3]) * 255).astype(int))
    obs = np.zeros((10, 10, 4), bool)
    obs[0, 0, [0, 3]] = True  # two channels in one cell: the highest wins
    obs[5, 5, 1] = True
    colours = cell_colours(obs)
    assert (colours[0, 0], colours[5, 5], colours[9, 9]) == (4, 2, 0)
    image = rgb(obs, tile_size=3)
    assert image.shape == (30, 30, 3) and image.dtype == np.uint8
    assert tuple(image[1, 1]) == tuple(palette(4)[4]) and tuple(image[29, 29]) == (0, 0, 0)
    out = str(tmp_path / "ep.gif")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert envs_command(["render", "MinAtar/Breakout-v1", "--out", out, "--steps", "8"]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 9 and gif.size == (160, 160)
        first = np.asarray(gif.convert("RGB"))
    assert {tuple(c) for c in first.reshape(-1, 3)} <= {tuple(c) for c in palette(4)}
    frame = render_env("MinAtar/SpaceInvaders-v0", str(tmp_path / "f.png"), tile_size=4)
    with Image.open(frame) as png:
        assert png.size == (40, 40)


def test_envs_list():
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert envs_command(["list", "MinAtar/"]) == 0
    ids = stdout.getvalue().split()
    assert ids == list_envs("MinAtar/") and len(ids) == 10
    assert {f"MinAtar/{t}-v{v}" for t in GAMES.values() for v in (0, 1)} == set(ids)


# --------------------------------------------------------------------------- task mixes
MIX = ("MinAtar/SpaceInvaders-v0", "MinAtar/Breakout-v0", "MinAtar/Asterix-v0")  # Willi et al.'s games


def test_union_channels_hold_every_games_channels_once():
    assert union_channels() == (
        "player", "enemy", "trail", "gold", "paddle", "ball", "brick", "chicken", "car", "speed1", "speed2",
        "speed3", "speed4", "speed5", "sub_front", "sub_back", "friendly_bullet", "enemy_bullet",
        "enemy_fish", "enemy_sub", "oxygen_guage", "diver_guage", "diver", "cannon", "alien", "alien_left",
        "alien_right")


@functools.cache
def _mix(tasks: tuple[str, ...] = MIX[:2]):
    return make(MINATAR_TASKMIX_ID, options=TaskMixOptions(tasks=tasks), minatar=MinAtarOptions(sticky=0.0))


@functools.cache
def _mix_step():
    """The batched step of a SpaceInvaders + Breakout mix, with each game's own observation of its state."""
    mix = _mix()

    def run(keys, state, actions):
        obs, state, _, term, _, info = jax.vmap(mix.step)(keys, state, actions)
        own = tuple(jax.vmap(e.game.observe)(s.game) for e, s in zip(mix.envs, state.states, strict=True))
        return obs, state, term, info["task"], own

    return jax.jit(run)


def test_taskmix_lays_every_game_out_in_the_union_channels():
    channels = union_channels()
    u = len(channels)
    three = _mix(MIX)
    assert three.observation_space.shape == (10, 10, u + 3) and three.observation_space.dtype == jnp.bool_
    assert three.action_space.n == 6 and three.spec.num_tasks == 3 and three.spec.task_names == MIX
    mix, n = _mix(), 8
    state = jax.vmap(mix.reset_env)(jax.random.split(jax.random.PRNGKey(0), n))
    seen = set()
    for t in range(12):
        obs, state, _, task, own = map(jax.device_get, _mix_step()(
            jax.random.split(jax.random.PRNGKey(100 + t), n), state, jnp.full(n, t % 6, jnp.int32)))
        np.testing.assert_array_equal(task_ids(obs, mix.spec), state.task)  # the task that plays next
        for i, j in enumerate(state.task):
            seen.add(int(j))
            where = [channels.index(c) for c in mix.envs[j].game.channels]
            np.testing.assert_array_equal(obs[i][..., where], own[j][i])
            assert not np.delete(obs[i][..., :u], where, axis=-1).any()
            np.testing.assert_array_equal(obs[i][..., u:], np.broadcast_to(np.eye(2, dtype=bool)[j],
                                                                           (10, 10, 2)))
    assert seen == {0, 1}
    assert task.shape == (n,)  # info["task"]: the task each env played


def test_taskmix_games_keep_their_own_last_action():
    mix, n = _mix(), 8
    assert all(e.options.sticky == 0.0 for e in mix.envs)
    state = jax.vmap(mix.reset_env)(jax.random.split(jax.random.PRNGKey(3), n))
    # a Breakout episode ends in every env (SpaceInvaders' last action was 4); whichever game comes next
    # starts from its own last executed action
    states = list(state.states)
    states[0] = states[0].replace(last_action=jnp.full(n, 4, jnp.int32))
    states[1] = states[1].replace(game=states[1].game.replace(terminal=jnp.ones(n, bool)))
    ended = state.replace(task=jnp.ones(n, jnp.int32), states=tuple(states))
    _, new, term, task, _ = _mix_step()(jax.random.split(jax.random.PRNGKey(5), n), ended, jnp.full(n, 3))
    assert np.asarray(term).all() and (np.asarray(task) == 1).all()
    next_task = np.asarray(new.task)
    assert set(next_task) == {0, 1}
    for i, j in enumerate(next_task):
        assert int(new.states[j].t[i]) == 0
        assert int(new.states[j].last_action[i]) == (4, 3)[j]


def test_taskmix_config_and_bad_mixes():
    config = RunConfig(env=MINATAR_TASKMIX_ID, taskmix=TaskMixOptions(tasks=MIX[:2]),
                       minatar=MinAtarOptions(sticky=0.0, max_steps=1000))
    from plastix.run.config import build_env

    validate(config)
    env = build_env(config)
    assert [e.options for e in env.envs] == [MinAtarOptions(0.0, True, 1000)] * 2
    assert env.max_steps == 1000
    with pytest.raises(ConfigError, match=r"taskmix.tasks: a MinAtar mix plays every game with the 6 "
                                          r"actions; use the -v0 ids \(MinAtar/Breakout-v0\)"):
        validate(dataclasses.replace(config, taskmix=TaskMixOptions(tasks=(MIX[0], "MinAtar/Breakout-v1"))))
    with pytest.raises(ConfigError, match=r"taskmix.tasks: .*unknown env id 'MinAtar/Breakot-v0'.*"
                                          r"MinAtar/Breakout-v0"):
        validate(dataclasses.replace(config, taskmix=TaskMixOptions(tasks=(MIX[0], "MinAtar/Breakot-v0"))))
    with pytest.raises(ConfigError, match=r"taskmix.tasks: 'MiniGrid-Empty-5x5-v0' is not one of the Min"):
        validate(dataclasses.replace(config, taskmix=TaskMixOptions(tasks=(MIX[0], "MiniGrid-Empty-5x5-v0"))))
    with pytest.raises(ConfigError, match=r"taskmix.tasks: a mix needs at least two different MinAtar"):
        validate(dataclasses.replace(config, taskmix=TaskMixOptions(tasks=MIX[:1])))
    with pytest.raises(ConfigError, match=r"^minatar.sticky: "):
        validate(dataclasses.replace(config, minatar=MinAtarOptions(sticky=1.0)))
