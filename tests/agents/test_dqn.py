"""The DQN family against values computed by hand, its bad-input errors, and learning on device."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import plastix.envs as E
from plastix.agents.dqn import (
    DQN,
    DQNConfig,
    c51_target,
    categorical_projection,
    huber,
    linear_epsilon,
    optimizer,
    q_target,
    random_shift,
)
from plastix.envs.api import Box, Env
from plastix.nets.build import NetConfig
from plastix.run.config import ConfigError, from_dict, load_recipe, validate
from plastix.run.train import train


def test_categorical_projection_by_hand():
    support = jnp.array([-1.0, 0.0, 1.0])
    probs = jnp.array([[0.2, 0.5, 0.3]])
    # r = 0.5, gamma = 0.5: atoms move to 0, 0.5, 1.0
    got = categorical_projection(support, probs, 0.5 + 0.5 * support[None])
    np.testing.assert_allclose(got, [[0.0, 0.2 + 0.25, 0.25 + 0.3]], atol=1e-6)
    # atoms beyond the support collapse onto its ends; a terminal (discount 0) puts all mass at r
    got = categorical_projection(support, probs, jnp.array([[-3.0, 2.0, 5.0]]))
    np.testing.assert_allclose(got, [[0.2, 0.0, 0.8]], atol=1e-6)
    got = categorical_projection(support, probs, jnp.full((1, 3), -0.25))
    np.testing.assert_allclose(got, [[0.25, 0.75, 0.0]], atol=1e-6)


def test_c51_target_picks_the_bootstrap_action():
    support = jnp.array([-1.0, 0.0, 1.0])
    logits = jnp.log(jnp.array([[[0.1, 0.1, 0.8], [0.6, 0.2, 0.2]]]))  # two actions
    q_target_net = jnp.array([[0.7, -0.4]])
    q_online = jnp.array([[-1.0, 1.0]])
    ret, disc = jnp.array([0.0]), jnp.array([1.0])
    np.testing.assert_allclose(c51_target(support, ret, disc, logits, q_target_net), [[0.1, 0.1, 0.8]],
                               atol=1e-6)
    np.testing.assert_allclose(c51_target(support, ret, disc, logits, q_online), [[0.6, 0.2, 0.2]], atol=1e-6)


def test_double_q_target_by_hand():
    ret, disc = jnp.array([1.0, 0.5]), jnp.array([0.9, 0.0])
    q_next_target = jnp.array([[1.0, 3.0], [2.0, 0.0]])
    q_next_online = jnp.array([[5.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(q_target(ret, disc, q_next_target), [1.0 + 0.9 * 3.0, 0.5])
    # double: the online network picks action 0 for the first sample, target evaluates it
    np.testing.assert_allclose(q_target(ret, disc, q_next_target, q_next_online), [1.0 + 0.9 * 1.0, 0.5])


def test_huber_epsilon_and_shift_by_hand():
    np.testing.assert_allclose(huber(jnp.array([0.5, -2.0])), [0.125, 1.5])
    # Dopamine: 1 during warm-up, then linear to the final value over the decay period
    eps = [float(linear_epsilon(s, 100, 50, 0.01)) for s in (0, 50, 100, 150, 1000)]
    np.testing.assert_allclose(eps, [1.0, 1.0, 0.505, 0.01, 0.01], atol=1e-6)
    img = jnp.arange(2 * 5 * 5 * 1, dtype=jnp.float32).reshape(2, 5, 5, 1)
    out = random_shift(jax.random.PRNGKey(0), img, 2)
    assert out.shape == img.shape
    padded = np.pad(np.asarray(img), ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
    for b in range(2):  # each image is some crop of its edge-padded self
        crops = [padded[b, i:i + 5, j:j + 5] for i in range(5) for j in range(5)]
        assert any(np.array_equal(np.asarray(out[b]), c) for c in crops)


SPEC = E.make("MiniGrid-Empty-5x5-v0").spec


def test_noisy_net_draws_noise_when_training_and_none_in_evaluation():
    agent = DQN(SPEC, DQNConfig(noisy=True, dueling=True, distributional=True, atoms=11, buffer_size=100,
                                min_replay=10), 10, NetConfig(hidden=(16,)))
    state = agent.init(jax.random.PRNGKey(0))
    head = state.params["head"]
    # factorised noise: sigma per kernel entry, one noise vector per input and per output unit
    assert head["dense"]["sigma_kernel"].shape == head["dense"]["kernel"].shape == (16, 7 * 11)
    assert head["value"]["sigma_bias"].shape == (11,)
    obs = jnp.zeros((2,) + SPEC.observation_space.shape, jnp.uint8)
    a = agent.q_values(state.params, obs, jax.random.PRNGKey(1))
    b = agent.q_values(state.params, obs, jax.random.PRNGKey(2))
    assert not np.allclose(a, b)
    a = agent.q_values(state.params, obs, jax.random.PRNGKey(1), deterministic=True)
    b = agent.q_values(state.params, obs, jax.random.PRNGKey(2), deterministic=True)
    np.testing.assert_array_equal(a, b)
    # no weakly typed parameter: it would turn strong after the first update and recompile every call
    assert not [x for x in jax.tree.leaves(state) if getattr(x, "weak_type", False)]


def test_schedule_counts_updates():
    agent = DQN(SPEC, DQNConfig(num_envs=4, min_replay=20, update_period=3, buffer_size=100), 100)
    assert agent.warmup == 5  # ceil(20 / 4) iterations
    flags = [bool(agent.schedule(jnp.int32(i))[0]) for i in range(12)]
    assert [i for i, f in enumerate(flags) if f] == [5, 8, 11]
    assert [int(agent.schedule(jnp.int32(i))[1]) for i in (3, 5, 6, 8, 11)] == [0, 1, 1, 2, 3]


class _Continuous(Env):
    """A one-step env with a continuous action (to check that DQN refuses it)."""

    def __init__(self, env_id="Test-Continuous-v0"):
        self.env_id = env_id

    @property
    def default_params(self):
        return None

    @property
    def observation_space(self):
        return Box(-1.0, 1.0, (2,))

    @property
    def action_space(self):
        return Box(-1.0, 1.0, (1,))

    @property
    def max_steps(self):
        return 1

    def reset_env(self, key, params):
        return jnp.zeros(2)

    def step_env(self, key, state, action, params):
        return state, jnp.float32(0), jnp.bool_(True), jnp.bool_(False), {}

    def observe(self, state, params):
        return state


@pytest.mark.parametrize("change, field, words", [
    ({"dqn": {"buffer_size": 16, "batch_size": 32, "min_replay": 8}}, "dqn.buffer_size",
     "smaller than a batch"),
    ({"total_steps": 1000, "dqn": {"min_replay": 5000, "buffer_size": 10000}}, "dqn.min_replay", "budget"),
    ({"dqn": {"n_step": 0}}, "dqn.n_step", ">= 1"),
    ({"dqn": {"distributional": True, "atoms": 1}}, "dqn.atoms", "at least 2"),
    ({"dqn": {"loss": "l1"}}, "dqn.loss", "huber, mse"),
    ({"dqn": {"frame_stack": 4}}, "dqn.frame_stack", "axis of 4 frames"),
    ({"dqn": {"augment": "crop"}}, "dqn.augment", "none, shift"),
])
def test_bad_dqn_input_names_the_field(change, field, words):
    config = from_dict({"agent": "dqn", "env": "MiniGrid-Empty-5x5-v0", "total_steps": 100_000, **change})
    with pytest.raises(ConfigError) as err:
        validate(config)
    assert str(err.value).startswith(field + ":") and words in str(err.value), str(err.value)


def test_continuous_env_given_to_dqn_fails_before_compiling(monkeypatch):
    if "Test-Continuous-v0" not in E.list_envs():
        E.register("Test-Continuous-v0", _Continuous)
    compiled = []
    monkeypatch.setattr(jax, "jit", lambda *a, **k: compiled.append(1))
    with pytest.raises(ConfigError, match="agent: dqn supports discrete action spaces, but env "
                                          "Test-Continuous-v0 has a continuous action space"):
        train(from_dict({"agent": "dqn", "env": "Test-Continuous-v0"}))
    assert not compiled


def test_dqn_minigrid_solves_empty_8x8_on_device(tmp_path):
    config = dataclasses.replace(load_recipe("dqn_minigrid"), out_dir=str(tmp_path), progress=False)
    assert config.env == "MiniGrid-Empty-8x8-v0" and config.seeds == 3
    result = train(config)
    assert result.steps == config.total_steps
    assert min(result.eval_success) >= 0.95, result.eval_success


@pytest.mark.slow
def test_der_minigrid_solves_doorkey_5x5(tmp_path):
    config = dataclasses.replace(load_recipe("der_minigrid"), out_dir=str(tmp_path), progress=False)
    result = train(config)
    assert min(result.eval_success) >= 0.9, result.eval_success


def test_rmsprop_is_pytorchs_centered_rmsprop_by_hand():
    """Young & Tian's optimiser: torch.optim.RMSprop(lr, alpha=0.95, eps=0.01, centered=True), whose eps is
    added outside the square root of the (centered) second moment."""
    tx = optimizer(DQNConfig(optimizer="rmsprop", lr=2.5e-4, rms_decay=0.95, rms_eps=0.01))
    params = jnp.array([1.0, -2.0])
    state = tx.init(params)
    v, mean, expected = np.zeros(2), np.zeros(2), np.array([1.0, -2.0])
    for g in ([0.5, -1.0], [0.2, 0.3], [-0.4, 0.1]):
        updates, state = tx.update(jnp.array(g), state, params)
        params = optax.apply_updates(params, updates)
        g = np.array(g)
        v, mean = 0.95 * v + 0.05 * g * g, 0.95 * mean + 0.05 * g
        expected = expected - 2.5e-4 * g / (np.sqrt(v - mean**2) + 0.01)
    np.testing.assert_allclose(np.asarray(params), expected, rtol=1e-6)


def test_young_and_tian_minatar_network_has_their_parameter_count():
    """Conv 16 3x3 (no padding) -> 128 -> 6 on Breakout's 10x10x4: 592 + 131,200 + 774 parameters."""
    config = load_recipe("dqn_minatar")
    agent = DQN(E.make(config.env).spec, config.dqn, 10, config.net)
    state = agent.init(jax.random.PRNGKey(0))
    assert sum(x.size for x in jax.tree.leaves(state.params)) == 592 + 131_200 + 774
    dopamine = load_recipe("dqn_minatar_dopamine")  # SAME padding, no hidden layer: 592 + 1,600 x 6 + 6
    agent = DQN(E.make(dopamine.env).spec, dopamine.dqn, 10, dopamine.net)
    assert sum(x.size for x in jax.tree.leaves(agent.init(jax.random.PRNGKey(0)).params)) == 592 + 9_606
