"""The contract of one MinAtar game (Young & Tian 2019): a deterministic core that takes its random
draws as input, and the functions that draw them from a JAX key with the reference's distributions.

Keeping the draws outside the core is what makes the games testable as exact: a test records the
reference's own numpy draws and feeds them to ``reset`` / ``step``, and the same core runs in training
with draws from ``draw_reset`` / ``draw_step``. Every function is pure and acts on ONE env (vmap for
batches). A game derives its draws from given random words (``reset_draws`` / ``step_draws``), so the
env can take one step's and one reset's draws from one threefry call. Actions are always indices into
the full set of 6 (``ACTIONS``); the env maps a minimal-set index to it first, and sticky actions are
the env's (`plastix.envs.minatar.env`), not the game's.

The helpers below the contract build observations in the forms XLA runs fast (one packed cell map, or a
scatter of the few lit cells) and keep maps as row bit masks, so a batched step stays a few fused loops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

ACTIONS = ("n", "l", "u", "r", "d", "f")  # MinAtar's full action set, in its order
SIZE = 10  # every game is a 10x10 grid
_CELL = np.arange(SIZE * SIZE, dtype=np.int32).reshape(SIZE, SIZE)  # each cell's index y * 10 + x


@dataclass(frozen=True)
class Game:
    """One game's rules.

    - ``reset(draws) -> state``: the first state of an episode, from ``draw_reset(key)``'s draws;
    - ``step(state, action, draws, ramping) -> (state, reward, terminal)``: one ``act()`` of the
      reference (``action`` int32 in 0..5, ``ramping`` a Python bool, ``reward`` float32, ``terminal``
      bool). A state that is already terminal steps to itself with reward 0, as the reference does;
    - ``reset_draws(words) -> draws`` and ``step_draws(words, state) -> draws``: pytrees of the draws one
      reset / one step consumes, with the reference's distributions, from ``reset_words`` /
      ``step_words`` independent uniform ``uint32`` words (a draw whose range depends on the state, like
      Asterix's free slot, reads ``state``); `draw_reset` / `draw_step` draw those words from a key;
    - ``observe(state) -> bool[10, 10, C]``, channels in ``channels`` order;
    - ``from_minatar(game_env) -> state``: the state of a reference game object
      (``minatar.Environment(...).env``), so tests can import states in rare branches.
    """

    name: str  # the reference's module name: asterix, breakout, freeway, seaquest, space_invaders
    title: str  # the id's name: Asterix, Breakout, Freeway, Seaquest, SpaceInvaders
    channels: tuple[str, ...]
    minimal_actions: tuple[int, ...]  # indices into ACTIONS
    reset: Callable[[Any], Any]
    step: Callable[[Any, jax.Array, Any, bool], tuple[Any, jax.Array, jax.Array]]
    reset_words: int
    reset_draws: Callable[[jax.Array], Any]
    step_words: int
    step_draws: Callable[[jax.Array, Any], Any]
    observe: Callable[[Any], jax.Array]
    from_minatar: Callable[[Any], Any]
    # how the env observes after an auto-reset (the same observation either way, a matter of speed):
    # True selects between the fresh and the ended state's observations, for a game whose `observe` is a
    # grid of comparisons that XLA would otherwise fuse, with the step's end-of-episode test, into each
    # entry; False observes the selected state
    select_observation: bool = False

    def draw_reset(self, key: jax.Array | None) -> Any:
        """The draws of one reset, from ``key`` (unread, and may be None, for a game whose resets draw
        nothing)."""
        return self.reset_draws(random_words(key, self.reset_words))

    def draw_step(self, key: jax.Array | None, state: Any) -> Any:
        """The draws of one step from ``state``, from ``key`` (unread when the game's steps draw nothing)."""
        return self.step_draws(random_words(key, self.step_words), state)


def to_rows(grid: Any) -> jax.Array:
    """``int32[10]`` row bit masks (bit ``x`` of entry ``y``: cell ``(y, x)``) of a ``[10, 10]`` map's
    nonzero cells."""
    return (jnp.asarray(grid) != 0).astype(jnp.int32) @ jnp.left_shift(1, jnp.arange(SIZE, dtype=jnp.int32))


def to_grid(rows: jax.Array) -> jax.Array:
    """The ``bool[10, 10]`` map of ``int32[10]`` row bit masks."""
    return row_bits(rows, 0) != 0


def row_bits(rows: jax.Array, channel: int) -> jax.Array:
    """``int32[10, 10]``: bit ``channel`` set in the cells of ``int32[10]`` row bit masks."""
    return ((rows[..., :, None] >> np.arange(SIZE, dtype=np.int32)) & 1) << channel


def row_at(rows: jax.Array, y: jax.Array) -> jax.Array:
    """Entry ``y`` of ``rows [10]`` (0 when ``y`` is off the grid)."""
    return jnp.where((y >= 0) & (y < SIZE), rows[jnp.clip(y, 0, SIZE - 1)], 0)


def any_row(rows: jax.Array) -> jax.Array:
    """Whether any of ``rows [10]`` is nonzero (elementwise, as `row_at`)."""
    out = rows[0]
    for r in range(1, SIZE):
        out = out | rows[r]
    return out != 0


def one_cell(y: jax.Array, x: jax.Array, channel: int) -> jax.Array:
    """``int32[10, 10]``: bit ``channel`` set in cell ``(y, x)`` alone (``x`` on the grid)."""
    return jnp.where(_CELL == y * SIZE + x, 1 << channel, 0)


def unpack_cells(cells: jax.Array, channels: int) -> jax.Array:
    """``bool[10, 10, channels]`` from ``cells [10, 10]``, whose bit ``c`` lights channel ``c`` in its
    cell: the observation built as one packed map, which XLA computes once per cell and expands with a
    shift and a compare per entry (channels stacked apart cost more in every entry)."""
    return ((cells[..., None] >> np.arange(channels, dtype=cells.dtype)) & 1) != 0


def entry(y: jax.Array, x: jax.Array, channel: Any, channels: int) -> jax.Array:
    """The index of channel ``channel`` of cell ``(y, x)`` in a flattened ``[10, 10, channels]``
    observation, as `lit_cells` reads it."""
    return (y * SIZE + x) * channels + channel


def lit_cells(index: jax.Array, channels: int) -> jax.Array:
    """``bool[10, 10, channels]`` with the entries ``index`` (`entry`) lit, those past the end dropped. A
    scatter of the few lit entries runs once, where XLA fuses a grid of comparisons into every entry of
    what reads it, recomputing there the step that placed them."""
    size = SIZE * SIZE * channels
    return jnp.zeros(size, jnp.bool_).at[index].set(True, mode="drop").reshape(SIZE, SIZE, channels)


def random_words(key: jax.Array | None, n: int) -> jax.Array:
    """``uint32[n]`` independent uniform words from ``key`` (none, and no key needed, for ``n = 0``): both
    outputs of Threefry-2x32 blocks 0, 1, ... under the key's threefry key, for a key of another PRNG
    its ``jax.random.bits``."""
    if not n:
        return jnp.zeros((0,), jnp.uint32)
    if str(jax.random.key_impl(key)) != "threefry2x32":
        return jax.random.bits(key, (n,), jnp.uint32)
    data = jax.random.key_data(key)
    counts = jnp.arange((n + 1) // 2, dtype=jnp.uint32)
    return jnp.concatenate(threefry2x32(data[0], data[1], jnp.zeros_like(counts), counts))[:n]


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def threefry2x32(k0: jax.Array, k1: jax.Array, x0: jax.Array, x1: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 hash of counters ``(x0, x1)`` under key ``(k0, k1)`` (Salmon et al. 2011, 20
    rounds; jax.random's), written out round by round: XLA fuses it into one loop, where the rolled loop
    jax lowers it to on CPU runs each round apart, several times slower."""
    ks = (k0, k1, k0 ^ k1 ^ np.uint32(0x1BD11BDA))
    x0, x1 = x0 + ks[0], x1 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = x0 ^ ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r)))
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x0, x1
