"""PPO's loss and GAE against values computed by hand."""

import collections
from dataclasses import replace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from plastix.agents.api import Transitions
from plastix.agents.ppo import PPO, PPOConfig, Rollout, gae, permutation
from plastix.envs.api import Box, Discrete, EnvSpec
from plastix.nets.build import NetConfig
from plastix.plasticity.hook import Case, PlasticityConfig, make_hook
from plastix.plasticity.metrics import activity
from plastix.plasticity.probe import probe
from plastix.run.config import ConfigError, RunConfig, validate

SPEC = EnvSpec("toy", Box(0, 1, (2,)), Discrete(3), 10, True)


def _constant_params(agent, logits, value):
    """Zero every kernel and bias except the heads' biases: logits and value no longer depend on obs."""
    params = jax.tree.map(jnp.zeros_like, agent.init(jax.random.PRNGKey(0)).params)
    params["actor_head"]["dense"]["bias"] = jnp.asarray(logits, jnp.float32)
    params["critic_head"]["dense"]["bias"] = jnp.asarray([value], jnp.float32)
    return params


def test_loss_matches_hand_computation():
    cfg = PPOConfig(clip_eps=0.2, vf_coef=0.5, ent_coef=0.01, normalize_advantage=False)
    agent = PPO(SPEC, cfg, num_updates=1)
    logits = np.log(np.array([0.5, 0.25, 0.25]))
    params = _constant_params(agent, logits, value=1.0)
    batch = {
        "obs": jnp.zeros((2, 2)),
        "action": jnp.array([0, 1]),
        "log_prob": jnp.log(jnp.array([0.25, 0.25])),  # ratios: 0.5/0.25 = 2.0, 0.25/0.25 = 1.0
        "value": jnp.array([0.5, 1.5]),
        "advantage": jnp.array([1.0, -2.0]),
        "return": jnp.array([2.0, 0.0]),
    }
    loss, aux = agent.loss(params, batch)
    # policy: sample 0 ratio 2 clipped to 1.2 with A=1 -> -min(2, 1.2) = -1.2; sample 1 -> -(1 * -2) = 2
    pg = (-1.2 + 2.0) / 2
    # value 1.0: sample 0 err (1-2)^2 = 1, clipped 0.5+0.2=0.7 -> (0.7-2)^2 = 1.69, max 1.69
    #            sample 1 err (1-0)^2 = 1, clipped 1.5-0.2=1.3 -> 1.69, max 1.69
    vf = 0.5 * (1.69 + 1.69) / 2
    ent = -(0.5 * np.log(0.5) + 2 * 0.25 * np.log(0.25))
    np.testing.assert_allclose(float(aux["loss/policy"]), pg, rtol=1e-5)
    np.testing.assert_allclose(float(aux["loss/value"]), vf, rtol=1e-5)
    np.testing.assert_allclose(float(aux["loss/entropy"]), ent, rtol=1e-5)
    np.testing.assert_allclose(float(loss), pg + 0.5 * vf - 0.01 * ent, rtol=1e-5)
    np.testing.assert_allclose(float(aux["loss/clip_frac"]), 0.5)


def test_unclipped_value_loss_and_advantage_normalisation():
    cfg = PPOConfig(clip_value=False, normalize_advantage=True)
    agent = PPO(SPEC, cfg, num_updates=1)
    params = _constant_params(agent, [0.0, 0.0, 0.0], value=0.0)
    batch = {
        "obs": jnp.zeros((2, 2)),
        "action": jnp.array([0, 2]),
        "log_prob": jnp.log(jnp.full(2, 1 / 3)),  # ratio 1 everywhere
        "value": jnp.zeros(2),
        "advantage": jnp.array([3.0, 1.0]),  # normalised: [1, -1] (population std)
        "return": jnp.array([1.0, -3.0]),
    }
    _, aux = agent.loss(params, batch)
    np.testing.assert_allclose(float(aux["loss/policy"]), 0.0, atol=1e-6)  # -(1 - 1) / 2
    np.testing.assert_allclose(float(aux["loss/value"]), 0.5 * (1 + 9) / 2, rtol=1e-6)


def test_gae_by_hand():
    gamma, lam = 0.9, 0.8
    reward = jnp.array([[1.0], [0.0], [2.0]])
    value = jnp.array([[0.5], [1.0], [1.5]])
    # step 1 terminates (next value 0); step 2 is followed by a bootstrap value of 3
    next_value = jnp.array([[1.0], [0.0], [3.0]])
    done = jnp.array([[0.0], [1.0], [0.0]])
    adv, ret = gae(reward, value, next_value, done, gamma, lam)
    d2 = 2 + 0.9 * 3 - 1.5
    d1 = 0 + 0 - 1.0
    d0 = 1 + 0.9 * 1.0 - 0.5
    a1 = d1  # the trace is cut at the episode end
    a0 = d0 + gamma * lam * a1
    np.testing.assert_allclose(np.asarray(adv)[:, 0], [a0, a1, d2], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ret), np.asarray(adv) + np.asarray(value), rtol=1e-6)


def test_truncation_bootstraps_from_final_observation():
    agent = PPO(SPEC, PPOConfig(gamma=0.5, gae_lambda=1.0), num_updates=1)
    params = _constant_params(agent, [0.0, 0.0, 0.0], value=2.0)  # V = 2 everywhere
    z = jnp.zeros((1, 1))
    rollout = Rollout(
        obs=jnp.zeros((1, 1, 2)), action=jnp.zeros((1, 1), jnp.int32), reward=z + 1.0,
        terminated=jnp.zeros((1, 1), bool), truncated=jnp.ones((1, 1), bool),
        final_obs=jnp.zeros((1, 1, 2)), log_prob=z, value=z + 2.0, last_obs=jnp.zeros((1, 2)),
    )
    adv, _ = agent.targets(params, rollout)
    np.testing.assert_allclose(float(adv[0, 0]), 1 + 0.5 * 2 - 2)  # bootstrapped, not cut to 0
    rollout = rollout.replace(terminated=jnp.ones((1, 1), bool), truncated=jnp.zeros((1, 1), bool))
    adv, _ = agent.targets(params, rollout)
    np.testing.assert_allclose(float(adv[0, 0]), 1 - 2)


def test_gaussian_policy_log_prob_entropy_and_loss_by_hand():
    """Continuous PPO: a diagonal Gaussian with a state-independent log-std (mean 0.5 / -1, std e^0.3)."""
    spec = EnvSpec("toy-continuous", Box(0, 1, (2,)), Box(-1.0, 1.0, (2,)), 10, False)
    cfg = PPOConfig(clip_eps=0.2, vf_coef=0.5, ent_coef=0.01, normalize_advantage=False, clip_value=False)
    agent = PPO(spec, cfg, num_updates=1)
    params = _constant_params(agent, [0.5, -1.0], value=0.0)
    params["log_std"] = jnp.array([0.3, 0.3])
    action = np.array([[0.0, 0.0], [1.0, -1.0]])
    std = np.exp(0.3)
    logp = (-0.5 * ((action - [0.5, -1.0]) / std) ** 2 - 0.3 - 0.5 * np.log(2 * np.pi)).sum(-1)
    policy, _ = agent.apply(params, jnp.zeros((2, 2)))
    np.testing.assert_allclose(agent.log_prob(policy, jnp.asarray(action)), logp, rtol=1e-5)
    np.testing.assert_allclose(agent.entropy(policy), [2 * (0.3 + 0.5 * np.log(2 * np.pi * np.e))] * 2,
                               rtol=1e-5)
    batch = {"obs": jnp.zeros((2, 2)), "action": jnp.asarray(action), "log_prob": jnp.asarray(logp - 1.0),
             "value": jnp.zeros(2), "advantage": jnp.array([1.0, -1.0]), "return": jnp.zeros(2)}
    _, aux = agent.loss(params, batch)
    # ratios e^1: sample 0 (A=1) clipped to 1.2 -> -1.2; sample 1 (A=-1) max(e, 1.2) -> e
    np.testing.assert_allclose(float(aux["loss/policy"]), (-1.2 + np.e) / 2, rtol=1e-5)
    state = agent.init(jax.random.PRNGKey(0)).replace(params=params)
    sample, _ = agent.act(state, jnp.zeros((4096, 2)), jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(sample).mean(0), [0.5, -1.0], atol=0.1)
    np.testing.assert_allclose(np.asarray(sample).std(0), [std, std], rtol=0.05)


def _adam_states(opt_state):
    return [n for n in jax.tree.leaves(opt_state, is_leaf=lambda n: isinstance(n, optax.ScaleByAdamState))
            if isinstance(n, optax.ScaleByAdamState)]


def test_decoupled_epochs_count_optimiser_steps_per_network():
    """Actor 1 epoch, critic 3, 2 minibatches: the actor's Adam steps twice, the critic's six times, and
    neither optimiser ever holds moments of (or moves) the other network."""
    cfg = PPOConfig(num_envs=2, num_steps=4, num_minibatches=2, update_epochs=1, critic_epochs=3)
    agent = PPO(SPEC, cfg, num_updates=1, net=NetConfig(hidden=(8,), shared="none"))
    state = agent.init(jax.random.PRNGKey(0))
    rng = np.random.default_rng(0)
    z = jnp.zeros((4, 2))
    rollout = Rollout(obs=jnp.asarray(rng.uniform(size=(4, 2, 2)), jnp.float32),
                      action=jnp.asarray(rng.integers(0, 3, (4, 2)), jnp.int32),
                      reward=jnp.asarray(rng.normal(size=(4, 2)), jnp.float32), terminated=z > 0,
                      truncated=z > 0, final_obs=jnp.zeros((4, 2, 2)), log_prob=z - 1.1, value=z,
                      last_obs=jnp.zeros((2, 2)))
    new, _ = agent.update(state, rollout, jax.random.PRNGKey(1))
    actor_adam, critic_adam = (_adam_states(s)[0] for s in new.opt_state)
    assert int(actor_adam.count) == 1 * 2 and int(critic_adam.count) == 3 * 2
    critic_mask, _ = ravel_pytree(agent.only("critic", jax.tree.map(jnp.ones_like, state.params)))
    critic_mask = np.asarray(critic_mask, bool)
    assert np.all(np.asarray(actor_adam.mu)[critic_mask] == 0) and np.any(np.asarray(actor_adam.mu) != 0)
    assert np.all(np.asarray(critic_adam.mu)[~critic_mask] == 0) and np.any(np.asarray(critic_adam.mu) != 0)
    moved = np.asarray(ravel_pytree(new.params)[0] != ravel_pytree(state.params)[0])
    assert moved[critic_mask].any() and moved[~critic_mask].any()
    # the coupled default: one optimiser, update_epochs x minibatches steps
    coupled = PPO(SPEC, PPOConfig(num_envs=2, num_steps=4, num_minibatches=2, update_epochs=3),
                  num_updates=1, net=NetConfig(hidden=(8,), shared="none"))
    out, _ = coupled.update(coupled.init(jax.random.PRNGKey(0)), rollout, jax.random.PRNGKey(1))
    assert [int(a.count) for a in _adam_states(out.opt_state)] == [6]


def test_decoupled_epochs_need_separate_networks():
    config = RunConfig(ppo=PPOConfig(update_epochs=1, critic_epochs=9), net=NetConfig(shared="all"))
    with pytest.raises(ConfigError, match="ppo.critic_epochs: 9 critic epochs .* net.shared is 'all'"):
        validate(config)
    with pytest.raises(ConfigError, match="ppo.critic_epochs: must be >= 0"):
        validate(RunConfig(ppo=PPOConfig(critic_epochs=-1)))


def _random_rollout(t=4, n=2):
    rng = np.random.default_rng(0)
    z = jnp.zeros((t, n))
    return Rollout(obs=jnp.asarray(rng.uniform(size=(t, n, 2)), jnp.float32),
                   action=jnp.asarray(rng.integers(0, 3, (t, n)), jnp.int32),
                   reward=jnp.asarray(rng.normal(size=(t, n)), jnp.float32), terminated=z > 0,
                   truncated=z > 0, final_obs=jnp.zeros((t, n, 2)), log_prob=z - 1.1, value=z,
                   last_obs=jnp.zeros((n, 2)))


def test_fused_probe_leaves_the_update_unchanged_and_measures_its_first_minibatch():
    """With the hook's ``measure`` PPO's first minibatch step takes its gradient from the probe: the new
    parameters and losses equal the plain update's, and the activity equals a separate probe of that
    minibatch (the first of the first epoch's permutation) at the parameters before the step. Decoupled
    epochs (2 both, 1 critic alone) cover every branch of the update."""
    cfg = PPOConfig(num_envs=2, num_steps=4, num_minibatches=2, update_epochs=2, critic_epochs=3)
    agent = PPO(SPEC, cfg, num_updates=1, net=NetConfig(hidden=(8, 8), activation="relu", shared="none"))
    state, rollout, key = agent.init(jax.random.PRNGKey(0)), _random_rollout(), jax.random.PRNGKey(1)
    plasticity = PlasticityConfig(metrics="dormant,grama", every=2, tau=0.5)
    hook = make_hook(agent, plasticity)

    @jax.jit
    def updates(state, rollout, key):  # one compilation for both
        return agent.update(state, rollout, key), agent.update(state, rollout, key, hook.measure_for(1))

    (plain, plain_metrics), (fused, fused_metrics) = updates(state, rollout, key)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), fused, plain)
    for k, v in plain_metrics.items():
        np.testing.assert_allclose(fused_metrics[k], v, rtol=1e-6, atol=1e-7)
    data = agent.loss_batch(state, rollout)
    perm = permutation(jax.random.split(key, 3)[0], cfg.batch_size)
    first = jax.tree.map(lambda x: x[perm][: cfg.batch_size // 2], data)
    net = agent.plastic_nets()["actor_critic"]
    layers, grads = probe(lambda p: agent.loss(p, first), state.params, net.module, net.example)
    expected = activity(layers, state.params, grads, 0.5, ("dormant", "grama"))
    assert set(expected) <= set(fused_metrics) and "activity/grama/actor_torso/torso/dense_0" in expected
    for k, v in expected.items():
        np.testing.assert_allclose(fused_metrics[k], v, rtol=1e-6)
    # off the cadence (the first update, every 2): NaN, decided in the graph or known on the host
    loss = lambda p: agent.loss(p, first)  # noqa: E731
    for iteration, when in ((0, None), (0, Case(False, False)), (1, Case(True, False))):
        grads_of, _, found = hook.measure_for(iteration, when)("actor_critic", loss, state.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), grads_of, grads)
        for k, v in expected.items():
            np.testing.assert_allclose(found[k], v if iteration else np.nan, rtol=1e-6)
    # plasticity.fused false: the hook measures apart, after the update
    assert make_hook(agent, replace(plasticity, fused=False)).measure_for(jnp.int32(1)) is None


@pytest.mark.parametrize("count", [0, 1, 6, 7, 36])
def test_truncated_values_equal_the_critic_on_every_truncated_row(count):
    """The critic runs on at most N * ceil(T / max_steps) gathered rows (6 here: T 12, N 3, max_steps
    10), with every row computed when more are truncated; either way each truncated row gets its own
    final observation's value."""
    agent = PPO(SPEC, PPOConfig(), num_updates=1, net=NetConfig(hidden=(8,)))
    params = agent.init(jax.random.PRNGKey(0)).params
    rng = np.random.default_rng(count)
    truncated = np.zeros(36, bool)
    truncated[rng.choice(36, count, replace=False)] = True
    rollout = _random_rollout(12, 3).replace(
        truncated=jnp.asarray(truncated.reshape(12, 3)),
        final_obs=jnp.asarray(rng.uniform(size=(12, 3, 2)), jnp.float32))
    values = np.asarray(jax.jit(agent.truncated_values)(params, rollout))
    _, expected = agent.apply(params, rollout.final_obs.reshape(36, 2))
    np.testing.assert_allclose(values.reshape(-1)[truncated], np.asarray(expected)[truncated], rtol=1e-6)


@pytest.mark.parametrize("shared", ["none", "all"])
def test_rollout_values_are_the_collecting_critics(shared):
    """A separate critic is run once over the whole rollout instead of at every step, a shared one at
    every step (its torso is computed for the policy anyway): the same values either way."""
    agent = PPO(SPEC, PPOConfig(), num_updates=1, net=NetConfig(hidden=(8,), shared=shared))
    state = agent.init(jax.random.PRNGKey(0))
    obs = jnp.asarray(np.random.default_rng(0).uniform(size=(5, 3, 2)), jnp.float32)
    steps = [agent.act(state, o, jax.random.PRNGKey(i)) for i, o in enumerate(obs)]
    assert ("value" in steps[0][1]) == (shared == "all")
    z = jnp.zeros((5, 3))
    transitions = Transitions(obs=obs, action=jnp.stack([a for a, _ in steps]), reward=z, terminated=z > 0,
                              truncated=z > 0, next_obs=obs, aux=jax.tree.map(lambda *x: jnp.stack(x),
                                                                             *[aux for _, aux in steps]))
    rollout = agent.rollout(state.params, transitions, obs[-1])
    np.testing.assert_allclose(rollout.value, jax.vmap(lambda o: agent.apply(state.params, o)[1])(obs),
                               rtol=1e-5)


def test_minibatch_permutation_is_a_uniform_permutation():
    """PPO's shuffle: a permutation at every size (one, two and four sorting rounds), and over 24,000
    draws of n = 4 every one of the 24 orders within 5 standard deviations of 1,000."""
    for n in (1, 5, 2048, 70_000):
        drawn = np.asarray(permutation(jax.random.PRNGKey(n), n))
        np.testing.assert_array_equal(np.sort(drawn), np.arange(n))
    keys = jax.random.split(jax.random.PRNGKey(0), 24_000)
    draws = np.asarray(jax.jit(jax.vmap(lambda k: permutation(k, 4)))(keys))
    counts = collections.Counter(map(tuple, draws))
    assert len(counts) == 24 and all(abs(c - 1000) < 5 * np.sqrt(1000 * 23 / 24) for c in counts.values())
