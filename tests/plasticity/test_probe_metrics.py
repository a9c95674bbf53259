"""Probe and activity metrics against numpy on a tiny network with a dead neuron and an active neuron
that receives no gradient (where dormant and GraMa must disagree)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.nets import neurons
from plastix.nets.build import ActorCritic, MoEConfig, NetConfig
from plastix.nets.torsos import MLP
from plastix.plasticity.metrics import activation_scores, activity, grama_scores, srank
from plastix.plasticity.probe import probe


class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = MLP((3,), "relu", name="torso")(x)
        return nn.Dense(1, name="head")(h)[..., 0]


X = np.array([[1.0, 2.0], [0.5, 1.0], [2.0, 0.5], [1.5, 1.5]], np.float32)
T = np.array([1.0, -1.0, 0.5, 2.0], np.float32)


def _params():
    params = jax.tree.map(np.asarray, Tiny().init(jax.random.PRNGKey(0), X)["params"])
    params["torso"]["dense_0"]["kernel"] = np.array([[-1.0, 1.0, 0.5], [-1.0, 0.5, 1.0]], np.float32)
    params["torso"]["dense_0"]["bias"] = np.array([-0.1, 0.0, 0.2], np.float32)  # neuron 0: dead
    params["head"]["kernel"] = np.array([[0.7], [0.3], [0.0]], np.float32)  # neuron 2: no gradient
    params["head"]["bias"] = np.array([0.1], np.float32)
    return params


def _loss(params):
    return jnp.mean(jnp.square(neurons.apply(Tiny(), params, X) - T))


def test_probe_matches_hand_computation():
    params = _params()
    layers, grads = probe(_loss, params)
    assert list(layers) == ["torso/dense_0"]
    layer = layers["torso/dense_0"]
    w, b = params["torso"]["dense_0"]["kernel"], params["torso"]["dense_0"]["bias"]
    pre = X @ w + b
    h = np.maximum(pre, 0)
    y = h @ params["head"]["kernel"][:, 0] + params["head"]["bias"][0]
    dh = (2 * (y - T) / len(T))[:, None] * params["head"]["kernel"][:, 0][None, :]
    assert np.allclose(layer.activation, h, atol=1e-6)
    dz = dh * (pre > 0)  # the probe's gradient is taken at the pre-activation
    assert np.allclose(layer.grad, dz, atol=1e-6)
    dw = X.T @ dz
    assert np.allclose(layer.kernel_grad, dw, atol=1e-6)
    assert np.allclose(grads["torso"]["dense_0"]["kernel"], dw, atol=1e-6)

    act = np.abs(h).mean(0)
    assert np.allclose(activation_scores(layer), act / act.mean(), atol=1e-5)
    g = np.abs(dz).mean(0)
    assert np.allclose(grama_scores(layer), g / g.mean(), atol=1e-5)
    gw = np.abs(dw).mean(0)
    assert np.allclose(grama_scores(layer, "weight"), gw / gw.mean(), atol=1e-5)

    m = activity(layers, params, grads, tau=0.0, metrics=("dormant", "grama", "norms"))
    assert np.isclose(m["activity/dormant/torso/dense_0"], 1 / 3)  # neuron 0 only: 2 is active
    assert np.isclose(m["activity/grama/torso/dense_0"], 2 / 3)  # neurons 0 and 2 get no gradient
    assert np.isclose(m["activity/feature_norm/torso/dense_0"], np.linalg.norm(h, axis=1).mean(), atol=1e-5)
    flat = np.concatenate([np.ravel(v) for v in jax.tree.leaves(params)])
    assert np.isclose(m["activity/param_norm"], np.linalg.norm(flat), atol=1e-4)


def test_srank_by_hand():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 6))  # rank 2
    assert float(srank(jnp.asarray(base))) == 2
    noisy = (base + 0.3 * rng.normal(size=base.shape)).astype(np.float32)
    sv = np.linalg.svd(noisy, compute_uv=False)
    assert float(srank(jnp.asarray(noisy), 0.01)) == np.argmax(np.cumsum(sv) / sv.sum() >= 0.99) + 1
    assert float(srank(jnp.asarray(noisy), 0.2)) == np.argmax(np.cumsum(sv) / sv.sum() >= 0.8) + 1


@pytest.mark.parametrize("cfg", [NetConfig(activation="leaky_relu", torso="residual", hidden=(8, 8)),
                                 NetConfig(bottleneck="perconv", hidden=(8,),
                                           moe=MoEConfig("soft", experts=3, placement="actor"))])
def test_probe_covers_residual_and_expert_layers(cfg):
    net = ActorCritic(cfg, 3)
    obs = jax.random.normal(jax.random.PRNGKey(0), (5, 4, 4, 2))
    params = net.init(jax.random.PRNGKey(1), obs)["params"]

    def loss(p):
        logits, value = neurons.apply(net, p, obs)
        return jnp.square(value).mean() + logits.mean()

    layers, _ = jax.jit(lambda p: probe(loss, p))(params)
    assert layers
    for name, layer in layers.items():
        assert layer.activation.shape == layer.grad.shape, name
        scores = activation_scores(layer)
        if layer.stacked:
            assert scores.shape == (3, layer.activation.shape[-1])
            assert np.allclose(scores.mean(-1), 1.0, atol=1e-4)
        else:
            assert scores.shape == (layer.activation.shape[-1],)
    if cfg.moe.kind == "soft":
        assert any(layer.stacked for layer in layers.values())
    m = activity(layers, tau=0.1)
    assert 0.0 <= float(m["activity/grama"]) <= 1.0 and 0.0 <= float(m["activity/dormant"]) <= 1.0
