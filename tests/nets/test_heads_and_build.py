"""Heads by hand, the neuron-layer naming scheme, and the builder's actor-critic options."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.nets.build import ActorCritic, EncoderConfig, MoEConfig, NetConfig, check
from plastix.nets.heads import C51Head, NoisyDense, QHead, TanhGaussianHead, sample_tanh_gaussian
from plastix.nets.neurons import ACTIVATIONS, PERTURBATIONS

X = jax.random.normal(jax.random.PRNGKey(0), (4, 6))


def test_dueling_q_is_value_plus_centred_advantage():
    head = QHead(3, dueling=True)
    params = head.init(jax.random.PRNGKey(1), X)["params"]
    v = X @ params["value"]["kernel"] + params["value"]["bias"]
    a = X @ params["advantage"]["kernel"] + params["advantage"]["bias"]
    assert np.allclose(head.apply({"params": params}, X), v + a - a.mean(-1, keepdims=True), atol=1e-5)


def test_c51_q_is_the_expectation_over_the_support():
    head = C51Head(3, atoms=11, v_min=-1.0, v_max=1.0)
    params = head.init(jax.random.PRNGKey(1), X)["params"]
    q, logits = head.apply({"params": params}, X)
    assert logits.shape == (4, 3, 11)
    probs = np.asarray(jax.nn.softmax(logits, -1))
    assert np.allclose(q, (probs * np.linspace(-1, 1, 11)).sum(-1), atol=1e-5)


def test_tanh_gaussian_log_prob_by_change_of_variables():
    head = TanhGaussianHead(2)
    mean, log_std = head.apply(head.init(jax.random.PRNGKey(1), X), X)
    assert (log_std >= -20).all() and (log_std <= 2).all()
    action, log_prob = sample_tanh_gaussian(jax.random.PRNGKey(2), mean, log_std)
    assert (np.abs(action) < 1).all()
    pre = np.arctanh(np.clip(np.asarray(action, np.float64), -1 + 1e-7, 1 - 1e-7))
    std = np.exp(np.asarray(log_std, np.float64))
    gauss = (-0.5 * ((pre - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
    expected = gauss - np.log(1 - np.tanh(pre) ** 2).sum(-1)
    assert np.allclose(log_prob, expected, atol=1e-3)


def test_noisy_dense():
    layer = NoisyDense(3)
    variables = layer.init({"params": jax.random.PRNGKey(0), "noise": jax.random.PRNGKey(1)}, X)
    p = variables["params"]
    assert np.allclose(p["sigma_kernel"], 0.5 / np.sqrt(6))
    a = layer.apply(variables, X, rngs={"noise": jax.random.PRNGKey(2)})
    b = layer.apply(variables, X, rngs={"noise": jax.random.PRNGKey(3)})
    assert not np.allclose(a, b)
    mean = NoisyDense(3, deterministic=True).apply(variables, X)
    assert np.allclose(mean, X @ p["kernel"] + p["bias"], atol=1e-6)


def _paths(tree):
    return {tuple(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.mark.parametrize("cfg", [
    NetConfig(),
    NetConfig(torso="residual", activation="gelu"),
    NetConfig(encoder=EncoderConfig("nature"), bottleneck="perconv", moe=MoEConfig("soft", experts=2)),
    pytest.param(NetConfig(encoder=EncoderConfig("impala"), bottleneck="gap", shared="encoder",
                           moe=MoEConfig("topk", experts=3, position="all", placement="actor")),
                 marks=pytest.mark.slow),
    NetConfig(moe=MoEConfig("expert_choice", position="big")),
], ids=["mlp", "residual", "nature-soft", "impala-topk-all", "ec-big"])
def test_every_neuron_layer_follows_the_naming_scheme(cfg):
    """Each sown ``<name>_out`` has a parameterised module ``<name>`` beside it whose output width is
    the activation's last axis, and a perturbation of the same shape."""
    net = ActorCritic(cfg, 5)
    obs = jnp.zeros((2, 12, 12, 3))
    variables = net.init(jax.random.PRNGKey(0), obs)
    _, sown = net.apply({"params": variables["params"]}, obs, mutable=[ACTIVATIONS])
    assert sown[ACTIVATIONS]
    params = variables["params"]
    for path, act in jax.tree_util.tree_flatten_with_path(sown[ACTIVATIONS])[0]:
        keys = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
        assert keys[-1].endswith("_out")
        node = params
        for k in keys[:-1] + [keys[-1][: -len("_out")]]:
            node = node[k]
        width = (node["kernel"].shape[-1])
        assert act.shape[-1] == width
        perturbation = variables[PERTURBATIONS]
        for k in keys:
            perturbation = perturbation[k]
        assert perturbation.shape == act.shape


def test_loss_gradient_reaches_perturbations():
    cfg = NetConfig(moe=MoEConfig("soft", experts=2))
    net = ActorCritic(cfg, 5)
    obs = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 7, 3))
    variables = net.init(jax.random.PRNGKey(0), obs)

    def loss(perturbations):
        logits, value = net.apply({"params": variables["params"], PERTURBATIONS: perturbations}, obs)
        return logits.sum() + value.sum()

    grads = jax.grad(loss)(variables[PERTURBATIONS])
    norms = [float(jnp.abs(g).sum()) for g in jax.tree.leaves(grads)]
    assert len(norms) >= 4 and all(n > 0 for n in norms)


def test_sharing_and_placement():
    obs = jnp.zeros((2, 7, 7, 3))

    def top(cfg):
        return set(ActorCritic(cfg, 4).init(jax.random.PRNGKey(0), obs)["params"])

    cnn = EncoderConfig("nature")
    assert top(NetConfig(cnn, shared="none")) == {"actor_encoder", "critic_encoder", "actor_torso",
                                                  "critic_torso", "actor_head", "critic_head"}
    assert "encoder" in top(NetConfig(cnn, shared="encoder"))
    assert top(NetConfig(cnn, shared="all")) == {"encoder", "torso", "actor_head", "critic_head"}
    cfg = NetConfig(moe=MoEConfig("soft", placement="critic"))
    params = ActorCritic(cfg, 4).init(jax.random.PRNGKey(0), obs)["params"]
    assert "moe" in params["critic_torso"] and "moe" not in params["actor_torso"]
    final = dataclasses.replace(cfg, moe=MoEConfig("soft", placement="actor", position="final"))
    params = ActorCritic(final, 4).init(jax.random.PRNGKey(0), obs)["params"]
    assert params["actor_torso"]["moe"]["experts"]["dense_0"]["kernel"].shape == (4, 64, 4)
    assert "actor_head" not in params and "critic_head" in params


def test_check_rejects_bad_combinations():
    with pytest.raises(ValueError, match="net.moe.placement"):
        check(NetConfig(shared="all", moe=MoEConfig("soft", placement="actor")))
    with pytest.raises(ValueError, match="net.moe.position: big needs torso mlp"):
        check(NetConfig(torso="residual", moe=MoEConfig("soft", position="big")))
    with pytest.raises(ValueError, match="net.moe.aux: 'balance' is not one of entropy, importance, load"):
        check(NetConfig(moe=MoEConfig("topk", aux=("balance",))))
