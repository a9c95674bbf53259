"""ReDo / ReGraMa resets touch exactly the targeted rows, columns and optimiser moments, and leave the
network's output unchanged right after the reset."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from plastix.nets.build import ActorCritic, EncoderConfig, MoEConfig, NetConfig
from plastix.nets.neurons import expose
from plastix.nets.per_seed import Conv
from plastix.nets.pooling import max_pool
from plastix.plasticity.resets import inactive, plan, reset_layers, reset_neurons, shrink_and_perturb
from tests.plasticity.test_probe_metrics import Tiny, X, _loss, _params


def _adam(state):
    is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
    return next(x for x in jax.tree.leaves(state, is_leaf=is_adam) if is_adam(x))


def _changed(a, b):
    return {jax.tree_util.keystr(p): np.argwhere(np.asarray(x) != np.asarray(y))
            for (p, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b), strict=True)
            if (np.asarray(x) != np.asarray(y)).any()}


@pytest.mark.parametrize("flat_optimizer", [False, True])
def test_redo_and_regrama_on_a_tiny_mlp(flat_optimizer):
    from plastix.plasticity.probe import probe

    params = _params()
    tx = optax.flatten(optax.adam(1e-2)) if flat_optimizer else optax.adam(1e-2)
    opt_state = tx.init(params)
    _, opt_state = tx.update(jax.grad(_loss)(params), opt_state, params)  # non-zero moments
    fresh = jax.tree.map(np.asarray, Tiny().init(jax.random.PRNGKey(7), X)["params"])
    rp = plan(Tiny(), params, X[:1])
    assert set(rp.outgoing["torso/dense_0"]) == {("head", "kernel")}
    layers, _ = probe(_loss, params, Tiny(), (X[:1],))

    masks = inactive(layers, "redo", tau=0.0)  # neuron 0 is dead
    assert np.array_equal(masks["torso/dense_0"], [True, False, False])
    new, new_opt = reset_neurons(params, opt_state, fresh, masks, rp)
    changed = _changed(new, params)
    assert set(changed) == {"['head']['kernel']", "['torso']['dense_0']['bias']",
                            "['torso']['dense_0']['kernel']"}
    k_new, k_old = np.asarray(new["torso"]["dense_0"]["kernel"]), params["torso"]["dense_0"]["kernel"]
    assert np.array_equal(k_new[:, 0], fresh["torso"]["dense_0"]["kernel"][:, 0])
    assert np.array_equal(k_new[:, 1:], k_old[:, 1:])
    head = np.asarray(new["head"]["kernel"])
    assert head[0, 0] == 0 and np.array_equal(head[1:], params["head"]["kernel"][1:])
    out = lambda p, x: Tiny().apply({"params": p}, x)  # noqa: E731
    assert np.allclose(out(new, X), out(params, X), atol=1e-6)  # the reset neuron was dead on X

    touched = jax.tree.map(lambda a, b: a != b, new, params)
    touched["head"]["kernel"] = touched["head"]["kernel"] | (np.arange(3) == 0)[:, None]
    mu_new, mu_old = _adam(new_opt).mu, _adam(opt_state).mu
    if flat_optimizer:
        from jax.flatten_util import ravel_pytree
        flat_touched = np.asarray(ravel_pytree(touched)[0]).astype(bool)
        assert (np.asarray(mu_new)[flat_touched] == 0).all()
        assert np.array_equal(np.asarray(mu_new)[~flat_touched], np.asarray(mu_old)[~flat_touched])
    else:
        for m_new, m_old, t in zip(jax.tree.leaves(mu_new), jax.tree.leaves(mu_old), jax.tree.leaves(touched),
                                   strict=True):
            assert (np.asarray(m_new)[np.asarray(t)] == 0).all()
            assert np.array_equal(np.asarray(m_new)[~np.asarray(t)], np.asarray(m_old)[~np.asarray(t)])

    masks = inactive(layers, "regrama", tau=0.0)  # neurons 0 (dead) and 2 (no gradient)
    assert np.array_equal(masks["torso/dense_0"], [True, False, True])
    new, _ = reset_neurons(params, opt_state, fresh, masks, rp)
    assert np.allclose(out(new, X), out(params, X), atol=1e-6)  # neuron 2 had no outgoing weight
    assert (np.asarray(new["head"]["kernel"])[[0, 2]] == 0).all()


@pytest.mark.parametrize("cfg, layer, neuron", [
    (NetConfig(hidden=(6,), bottleneck="perconv", moe=MoEConfig("soft", experts=2, placement="actor")),
     "actor_torso/moe/experts/dense_0", 6 + 2),
    (NetConfig(encoder=EncoderConfig("nature"), bottleneck="flatten", hidden=(5,), activation="relu"),
     "actor_encoder/cnn/conv_1", 3),
    (NetConfig(torso="residual", hidden=(4, 4), activation="leaky_relu"),
     "critic_torso/torso/block_1/dense_0", 5),
], ids=["expert", "conv", "residual"])
def test_resets_in_experts_convs_and_residual_blocks(cfg, layer, neuron):
    net = ActorCritic(cfg, 3)
    obs = jax.random.normal(jax.random.PRNGKey(0), (4, 12, 12, 3))
    params = net.init(jax.random.PRNGKey(1), obs)["params"]
    fresh = net.init(jax.random.PRNGKey(2), obs)["params"]
    rp = plan(net, params, obs[:1])
    mask = jnp.zeros(rp.sizes[layer], bool).at[neuron].set(True)
    tx = optax.adam(1e-3)
    new, _ = reset_neurons(params, tx.init(params), fresh, {layer: mask}, rp)
    # silencing alone (outgoing zeroed, incoming kept) gives the same outputs: the re-drawn incoming
    # weights cannot reach the output until the outgoing ones relearn
    silenced, _ = reset_neurons(params, tx.init(params), params, {layer: mask}, rp)
    for a, b in zip(net.apply({"params": silenced}, obs), net.apply({"params": new}, obs), strict=True):
        assert np.allclose(a, b, atol=1e-5)
    assert _changed(silenced, params)
    changed = _changed(new, params)
    assert changed and all(len(v) for v in changed.values())
    kernel_path = layer.split("/")
    k_old = params
    k_new = new
    for k in kernel_path:
        k_old, k_new = k_old[k], k_new[k]
    diff = np.argwhere(np.asarray(k_old["kernel"]) != np.asarray(k_new["kernel"]))
    if layer.endswith("experts/dense_0"):  # expert 1, unit 2: kernel [n, in, h]
        assert set(map(tuple, diff[:, [0, 2]])) == {(1, 2)}
    else:
        assert set(diff[:, -1]) == {neuron}


def test_full_layer_reset_and_shrink_perturb():
    params = _params()
    fresh = jax.tree.map(np.asarray, Tiny().init(jax.random.PRNGKey(7), X)["params"])
    rp = plan(Tiny(), params, X[:1])
    new, _ = reset_layers(params, optax.adam(1e-3).init(params), fresh, ["torso/dense_0"], rp)
    assert np.array_equal(new["torso"]["dense_0"]["kernel"], fresh["torso"]["dense_0"]["kernel"])
    assert not np.asarray(new["head"]["kernel"]).any()
    sp = shrink_and_perturb(params, fresh, 0.8, 0.2)
    assert np.allclose(sp["head"]["bias"], 0.8 * params["head"]["bias"] + 0.2 * fresh["head"]["bias"])


def test_max_reset_fraction_keeps_the_lowest_scores():
    from plastix.plasticity.probe import Layer

    act = jnp.asarray([0.0, 0.5, 0.01, 2.0, 0.02, 0.0, 1.0, 1.0])  # mean |h| per neuron
    layers = {"l": Layer(act, jnp.ones_like(act), jnp.zeros((0, 8)), jnp.float32(1.0))}
    assert inactive(layers, "redo", tau=0.1)["l"].sum() == 4  # 0, 0.01, 0.02, 0 are dormant
    capped = inactive(layers, "redo", tau=0.1, max_fraction=0.25)["l"]  # 2 of 8 neurons at most
    assert np.array_equal(np.flatnonzero(capped), [0, 5])  # the two exactly-zero units, lowest first
    assert inactive(layers, "redo", tau=0.1, max_fraction=0.1)["l"].sum() == 0  # 0.8 neurons: none



@pytest.mark.parametrize("size", [20, 21])  # 21: SAME pooling pads the top and left edges too
@pytest.mark.parametrize("pool", [lambda h: max_pool(h, (3, 3), (2, 2), "SAME"),
                                  lambda h: nn.max_pool(h, (3, 3), strides=(2, 2), padding="SAME")],
                         ids=["plastix", "flax"])
def test_outgoing_weights_found_through_max_pooling(size, pool):
    """A neuron layer read through a 3x3 / stride-2 max pool by a convolution: every entry of that
    convolution's kernel belongs to the neuron (channel) it reads."""

    class PoolNet(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = expose(self, "conv_0", Conv(4, (3, 3), name="conv_0")(x), nn.relu)
            return Conv(5, (3, 3), name="conv_1")(pool(h)).sum(-1)

    x, network = jnp.ones((1, size, size, 2)), PoolNet()
    params = network.init(jax.random.PRNGKey(0), x)["params"]
    owners = plan(network, params, x).outgoing["conv_0"][("conv_1", "kernel")]
    np.testing.assert_array_equal(owners, np.broadcast_to(np.arange(4)[:, None], (3, 3, 4, 5)))
