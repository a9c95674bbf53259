"""SAC against hand computations: the tanh-Gaussian log-density, the critic / actor / temperature
losses on a hand-made batch, Polyak averaging, the update-to-data ratio, and its bad-input errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.agents.sac import SAC, SACConfig, polyak, tanh_gaussian_log_prob
from plastix.envs.api import Box, EnvSpec
from plastix.nets.build import MoEConfig, NetConfig
from plastix.nets.heads import sample_tanh_gaussian
from plastix.plasticity.hook import PlasticityConfig
from plastix.run.config import ConfigError, RunConfig, validate

SPEC = EnvSpec("toy", Box(-np.inf, np.inf, (3,)), Box(-1.0, 1.0, (2,)), 100, False)
SMALL = NetConfig(hidden=(8,), activation="relu")


def _agent(**kw):
    return SAC(SPEC, SACConfig(buffer_size=64, batch_size=4, actor=SMALL, critic=SMALL, **kw), 100)


def _batch():
    rng = np.random.default_rng(0)
    return {"obs": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32),
            "action": jnp.asarray(rng.uniform(-0.9, 0.9, size=(4, 2)), jnp.float32),
            "return": jnp.asarray([1.0, -0.5, 0.0, 2.0]), "discount": jnp.asarray([0.99, 0.0, 0.99, 0.99]),
            "next_obs": jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), "weight": jnp.ones(4)}


def test_tanh_gaussian_log_prob_is_the_change_of_variables():
    mean, log_std = jnp.array([0.3, -1.2]), jnp.array([-0.5, 0.4])
    a = jnp.array([0.6, -0.95])
    u = np.arctanh(np.asarray(a, np.float64))
    std = np.exp(np.asarray(log_std, np.float64))
    normal = np.exp(-0.5 * ((u - np.asarray(mean)) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    # density of tanh(u): p_u(u) |du/da| = p_u(u) / (1 - a^2), by finite differences of atanh
    h = 1e-6
    dudA = (np.arctanh(np.asarray(a, np.float64) + h) - np.arctanh(np.asarray(a, np.float64) - h)) / (2 * h)
    expected = np.log(normal * dudA).sum()
    np.testing.assert_allclose(tanh_gaussian_log_prob(mean, log_std, a), expected, rtol=1e-4)
    # sample_tanh_gaussian returns the same log-density for the action it draws
    action, logp = sample_tanh_gaussian(jax.random.PRNGKey(3), mean, log_std)
    np.testing.assert_allclose(logp, tanh_gaussian_log_prob(mean, log_std, action), rtol=1e-4)
    # and the density integrates to 1 over (-1, 1) (1-D)
    grid = np.linspace(-1 + 1e-7, 1 - 1e-7, 400_001)
    dens = np.exp(np.asarray(tanh_gaussian_log_prob(mean[:1], log_std[:1], jnp.asarray(grid)[:, None])))
    assert abs(np.trapezoid(dens, grid) - 1.0) < 1e-3


def test_critic_loss_by_hand():
    agent = _agent(reward_scale=2.0)
    state = agent.init(jax.random.PRNGKey(0))
    state = state.replace(log_alpha=jnp.log(0.3),
                          target_critic_params=jax.tree.map(lambda x: x * 0.5, state.critic_params))
    batch, key = _batch(), jax.random.PRNGKey(7)
    loss, info = agent.critic_loss(state.critic_params, state.target_critic_params, state.actor_params,
                                   state.log_alpha, batch, key)
    mean, log_std = agent.actor.apply({"params": state.actor_params}, batch["next_obs"])
    a2, logp2 = sample_tanh_gaussian(key, mean, log_std)
    q_next = np.asarray(agent.critic.apply({"params": state.target_critic_params}, batch["next_obs"], a2))
    y = 2.0 * np.asarray(batch["return"]) + np.asarray(batch["discount"]) * (
        q_next.min(0) - 0.3 * np.asarray(logp2))
    q = np.asarray(agent.critic.apply({"params": state.critic_params}, batch["obs"], batch["action"]))
    expected = 0.5 * (((q[0] - y) ** 2).mean() + ((q[1] - y) ** 2).mean())
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(info["q/target"], y.mean(), rtol=1e-5)


def test_actor_and_temperature_losses_by_hand():
    agent = _agent()
    state = agent.init(jax.random.PRNGKey(1))
    batch, key = _batch(), jax.random.PRNGKey(9)
    loss, info = agent.actor_loss(state.actor_params, state.critic_params, jnp.log(0.2), batch, key)
    mean, log_std = agent.actor.apply({"params": state.actor_params}, batch["obs"])
    a, logp = sample_tanh_gaussian(key, mean, log_std)
    q = np.asarray(agent.critic.apply({"params": state.critic_params}, batch["obs"], a)).min(0)
    np.testing.assert_allclose(loss, (0.2 * np.asarray(logp) - q).mean(), rtol=1e-5)
    # temperature: target entropy -|A| = -2; d/d log_alpha of -mean(log_alpha (logp + H)) = -mean(logp - 2)
    assert agent.target_entropy == -2.0
    grad = jax.grad(agent.alpha_loss)(jnp.float32(0.0), info["logp"])
    np.testing.assert_allclose(grad, -(np.asarray(info["logp"]) - 2.0).mean(), rtol=1e-5)


def test_gradient_step_moves_temperature_against_the_entropy_gap_and_targets_by_tau():
    agent = _agent(tau=0.1, alpha_lr=0.01)
    state = agent.init(jax.random.PRNGKey(2))
    state = state.replace(target_critic_params=jax.tree.map(jnp.zeros_like, state.critic_params))
    new, info = agent.gradient_step(state, _batch(), jax.random.PRNGKey(4))
    # targets: 0.9 * old target (zeros) + 0.1 * the updated critic
    jax.tree.map(lambda t, c: np.testing.assert_allclose(t, 0.1 * c, rtol=1e-6),
                 new.target_critic_params, new.critic_params)
    # Adam's first step moves log_alpha by lr against the gradient's sign: entropy above the target
    # (-2 for 2-D actions) lowers the temperature
    assert info["entropy"] > -2.0
    np.testing.assert_allclose(new.log_alpha, state.log_alpha - 0.01, atol=1e-5)


def test_polyak_by_hand():
    out = polyak({"w": jnp.array([1.0, 2.0])}, {"w": jnp.array([3.0, -2.0])}, 0.25)
    np.testing.assert_allclose(out["w"], [1.5, 1.0])


@pytest.mark.parametrize("utd,num_envs,expected", [(1.0, 1, (1, 1)), (4.0, 1, (4, 1)), (0.25, 1, (1, 4)),
                                                   (0.5, 4, (2, 1)), (0.125, 2, (1, 4))])
def test_update_to_data_ratio(utd, num_envs, expected):
    agent = SAC(SPEC, SACConfig(utd=utd, num_envs=num_envs, actor=SMALL, critic=SMALL), 100)
    assert (agent.gradient_steps, agent.update_period) == expected


def _sac(**kw):
    return RunConfig(env="Hopper-v5", agent="sac", total_steps=20_000, sac=SACConfig(**kw))


@pytest.mark.parametrize("config,match", [
    (RunConfig(env="MiniGrid-Empty-5x5-v0", agent="sac"), "agent: sac supports continuous action spaces"),
    (_sac(utd=0.0), r"sac.utd: must be positive, got 0.0"),
    (_sac(utd=-1.0), r"sac.utd: must be positive"),
    (_sac(utd=0.3), r"sac.utd: 0.3 gradient steps per env step"),
    (RunConfig(env="dmc/cheetah-runn", agent="sac"), r"unknown env id 'dmc/cheetah-runn'.*dmc/cheetah-run"),
    (RunConfig(env="Hopper-v5", agent="sac", net=NetConfig(hidden=(32,))), r"net: SAC's networks are set"),
    (_sac(learning_starts=30_000), r"sac.learning_starts: 30000 random transitions"),
    (_sac(shared_encoder=True), r"sac.shared_encoder: needs a pixel encoder"),
    (_sac(critic=NetConfig(activation="sigmoid")), r"sac.critic.activation: 'sigmoid' is not one of"),
    (RunConfig(env="Hopper-v5", agent="sac", total_steps=20_000,
               plasticity=PlasticityConfig(reset="regrama", max_reset_fraction=0.0)),
     r"plasticity.max_reset_fraction: must lie in \(0, 1\]"),
])
def test_bad_input_fails_before_compiling(config, match):
    with pytest.raises(ConfigError, match=match):
        validate(config)


def test_sac_takes_discrete_agents_off_continuous_envs():
    with pytest.raises(ConfigError, match="agent: dqn supports discrete action spaces, but env Hopper-v5"):
        validate(RunConfig(env="Hopper-v5", agent="dqn"))


def test_shared_pixel_encoder_feeds_the_actor_through_a_stop_gradient():
    spec = EnvSpec("pix", Box(0, 255, (16, 16, 3), jnp.uint8), Box(-1.0, 1.0, (2,)), 100, False)
    pix = dataclasses.replace(SMALL, encoder=dataclasses.replace(SMALL.encoder, kind="impala"))
    agent = SAC(spec, SACConfig(buffer_size=64, shared_encoder=True, actor=SMALL, critic=pix), 100)
    state = agent.init(jax.random.PRNGKey(0))
    assert "encoder" in state.critic_params and "cnn" not in state.actor_params.get("encoder", {})
    obs = jnp.ones((4, 16, 16, 3), jnp.uint8)
    features = agent.actor_input(state.critic_params, obs)
    assert features.shape == (4, agent.critic_features)
    # the actor's input carries no gradient back into the encoder
    grads = jax.grad(lambda cp: agent.actor_input(cp, obs).sum())(state.critic_params)
    assert not any(np.any(g != 0) for g in jax.tree.leaves(grads))
    # while the critic loss trains it
    batch = {**_batch(), "obs": obs, "next_obs": obs}
    grads = jax.grad(lambda cp: agent.critic_loss(cp, state.target_critic_params, state.actor_params,
                                                  state.log_alpha, batch, jax.random.PRNGKey(1))[0])(
        state.critic_params)
    assert any(np.any(g != 0) for g in jax.tree.leaves(grads["encoder"]))


@pytest.mark.parametrize("side", ["actor", "critic"])
def test_moe_auxiliary_losses_and_routing_statistics_reach_sac_losses(side):
    def loss_info(coef):
        moe = NetConfig(hidden=(8, 8), activation="relu",
                        moe=MoEConfig(kind="topk", experts=4, aux=("load", "importance"), aux_coef=coef))
        nets = {"actor": SMALL, "critic": SMALL, side: moe}
        agent = SAC(SPEC, SACConfig(buffer_size=64, batch_size=4, **nets), 100)
        state = agent.init(jax.random.PRNGKey(0))
        batch, key = _batch(), jax.random.PRNGKey(5)
        if side == "critic":
            return agent.critic_loss(state.critic_params, state.target_critic_params, state.actor_params,
                                     state.log_alpha, batch, key)
        return agent.actor_loss(state.actor_params, state.critic_params, jnp.log(0.2), batch, key)

    loss0, info0 = loss_info(0.0)
    loss1, info1 = loss_info(1.0)
    aux = info1[f"loss/{side}_moe_aux"]
    assert float(aux) > 0 and float(info0[f"loss/{side}_moe_aux"]) == 0.0
    np.testing.assert_allclose(loss1 - loss0, aux, rtol=1e-5)  # the auxiliary loss is in what is minimised
    routing = [k for k in info1 if k.startswith(f"moe/{side}/")]
    assert any(k.endswith("/load_imbalance") for k in routing)
    assert any(k.endswith("/entropy") for k in routing)
