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


def _by_hand(params, x, t):
    """Activations, pre-activation gradients and the kernel gradient of Tiny's layer, in numpy."""
    w, b = params["torso"]["dense_0"]["kernel"], params["torso"]["dense_0"]["bias"]
    pre = x @ w + b
    h = np.maximum(pre, 0)
    y = h @ params["head"]["kernel"][:, 0] + params["head"]["bias"][0]
    dh = (2 * (y - t) / len(t))[:, None] * params["head"]["kernel"][:, 0][None, :]
    dz = dh * (pre > 0)  # the probe's gradient is taken at the pre-activation
    return h, dz, x.T @ dz


def test_probe_matches_hand_computation():
    params = _params()
    layers, grads = probe(_loss, params, Tiny(), (X[:1],), gram=True)
    assert list(layers) == ["torso/dense_0"]
    layer = layers["torso/dense_0"]
    h, dz, dw = _by_hand(params, X, T)
    assert np.allclose(layer.activation, np.abs(h).mean(0), atol=1e-6)
    assert np.allclose(layer.grad, np.abs(dz).mean(0), atol=1e-6)
    assert np.allclose(layer.kernel_grad, dw, atol=1e-6)
    assert np.allclose(layer.gram, h.T @ h / len(h), atol=1e-5)
    assert np.allclose(grads["torso"]["dense_0"]["kernel"], dw, atol=1e-6)

    act = np.abs(h).mean(0)
    assert np.allclose(activation_scores(layer), act / act.mean(), atol=1e-5)
    g = np.abs(dz).mean(0)
    assert np.allclose(grama_scores(layer), g / g.mean(), atol=1e-5)
    gw = np.abs(dw).mean(0)
    assert np.allclose(grama_scores(layer, "weight"), gw / gw.mean(), atol=1e-5)

    m = activity(layers, params, grads, tau=0.0, metrics=("dormant", "grama", "norms", "srank"))
    assert np.isclose(m["activity/dormant/torso/dense_0"], 1 / 3)  # neuron 0 only: 2 is active
    assert np.isclose(m["activity/grama/torso/dense_0"], 2 / 3)  # neurons 0 and 2 get no gradient
    assert np.isclose(m["activity/feature_norm/torso/dense_0"], np.linalg.norm(h, axis=1).mean(), atol=1e-5)
    assert m["activity/srank/torso/dense_0"] == srank(jnp.asarray(h))  # the Gram's rank = the features'
    flat = np.concatenate([np.ravel(v) for v in jax.tree.leaves(params)])
    assert np.isclose(m["activity/param_norm"], np.linalg.norm(flat), atol=1e-4)


def test_a_layer_is_named_once_over_every_call_of_its_network_in_scan_and_twice_per_step():
    """A loss that runs its network inside ``lax.scan``, twice per step (and once more outside, through a
    ``cond``): each layer reports the statistics of every sample of every call, computed by hand."""
    params = _params()
    xs = np.stack([X, X[::-1] * 0.5, X + 1.0]).astype(np.float32)  # three steps of four samples
    ts = np.stack([T, -T, T * 2]).astype(np.float32)

    def loss(p):
        def step(total, xt):
            x, t = xt
            first = jnp.mean(jnp.square(neurons.apply(Tiny(), p, x) - t))
            second = jnp.mean(jnp.square(neurons.apply(Tiny(), p, 2.0 * x) - t))
            return total + first + second, None

        total = jax.lax.scan(step, 0.0, (xs, ts))[0]
        return total + jax.lax.cond(True, lambda: _loss(p), lambda: 0.0)

    layers, grads = jax.jit(lambda p: probe(loss, p, Tiny(), (X[:1],), gram=True))(params)
    assert list(layers) == ["torso/dense_0"]
    calls = [(x, t) for x, t in zip(xs, ts, strict=True)] + [(2 * x, t) for x, t in zip(xs, ts, strict=True)]
    calls.append((X, T))
    parts = [_by_hand(params, x, t) for x, t in calls]
    h = np.concatenate([p[0] for p in parts])
    dz = np.concatenate([p[1] for p in parts])
    layer = layers["torso/dense_0"]
    assert np.allclose(layer.activation, np.abs(h).mean(0), atol=1e-5)
    assert np.allclose(layer.grad, np.abs(dz).mean(0), atol=1e-6)
    assert np.allclose(layer.feature_norm, np.linalg.norm(h, axis=1).mean(), atol=1e-5)
    assert np.allclose(layer.gram, h.T @ h / len(h), atol=1e-4)
    assert np.allclose(grads["torso"]["dense_0"]["kernel"], sum(p[2] for p in parts), atol=1e-5)
    plain = jax.grad(loss)(params)["torso"]["dense_0"]["kernel"]
    assert np.allclose(grads["torso"]["dense_0"]["kernel"], plain, atol=1e-6)


def test_a_loss_that_never_calls_its_network_with_the_probed_parameters_is_refused():
    params = _params()
    copy = jax.tree.map(jnp.asarray, params)
    with pytest.raises(ValueError, match="probe: the loss never calls Tiny through"):
        probe(lambda p: jnp.mean(Tiny().apply({"params": p}, X)), params, Tiny(), (X[:1],))
    with pytest.raises(ValueError, match="probe: the loss never calls Tiny"):  # other parameters
        probe(lambda p: jnp.mean(neurons.apply(Tiny(), copy, X)) + 0 * p["head"]["bias"].sum(), params,
              Tiny(), (X[:1],))


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

    layers, _ = jax.jit(lambda p: probe(loss, p, net, (obs[:1],)))(params)
    assert layers
    expected = {"/".join(k.key for k in path[:-1]) + "/" + path[-1].key[: -len("_out")]
                for path, _ in jax.tree_util.tree_flatten_with_path(
                    net.init(jax.random.PRNGKey(1), obs)[neurons.PERTURBATIONS])[0]}
    assert set(layers) == expected  # every neuron layer, by its module path
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
