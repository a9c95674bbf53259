"""PPO's loss and GAE against values computed by hand."""

import jax
import jax.numpy as jnp
import numpy as np

from plastix.agents.ppo import PPO, PPOConfig, Rollout, gae
from plastix.envs.api import Box, Discrete, EnvSpec

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
