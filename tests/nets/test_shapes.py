"""Encoder / bottleneck shapes and parameter counts against Dopamine's published numbers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.nets.bottleneck import Bottleneck, Tokenizer, aggregate
from plastix.nets.moe import SoftMoE
from plastix.nets.torsos import ImpalaCNN, NatureCNN, ResidualMLP

FRAMES = jnp.zeros((2, 84, 84, 4), jnp.uint8)


def count(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def init(module, x):
    """Parameter shapes only: counting needs no compute."""
    return jax.eval_shape(module.init, jax.random.PRNGKey(0), x)["params"]


@pytest.mark.parametrize("padding, side", [("SAME", 11), ("VALID", 7)])
def test_nature_cnn(padding, side):
    net = NatureCNN(padding)
    assert count(init(net, FRAMES)) == 77_984
    assert jax.eval_shape(net.init_with_output, jax.random.PRNGKey(0), FRAMES)[0].shape == (2, side, side, 64)


@pytest.mark.parametrize("scale, params_expected", [(1, 97_744), (4, 1_552_192)])
def test_impala_cnn(scale, params_expected):
    net = ImpalaCNN(scale)
    assert count(init(net, FRAMES)) == params_expected
    out = jax.eval_shape(net.init_with_output, jax.random.PRNGKey(0), FRAMES)[0]
    assert out.shape == (2, 11, 11, 32 * scale)


class _Head(nn.Module):
    bottleneck: str

    @nn.compact
    def __call__(self, x):
        return nn.Dense(512, name="dense")(Bottleneck(self.bottleneck)(x))


@pytest.mark.parametrize("bottleneck, expected", [("flatten", 1_982_976), ("gap", 16_896)])
def test_bottleneck_to_dense_512_after_impala(bottleneck, expected):
    features = jnp.zeros((2, 11, 11, 32))
    params = init(_Head(bottleneck), features)
    assert count(params["dense"]) == expected


def test_one_softmoe_expert_at_d32_h512():
    tokens = jnp.zeros((2, 121, 32))
    params = init(SoftMoE(experts=1, hidden=(512,)), tokens)
    assert count(params["experts"]) == 33_312
    assert params["phi"].shape == (32, 121)  # one expert, ceil(121 * 1.0 / 1) slots


def test_tokenizers():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 11, 11, 32))
    shapes = {"perconv": (121, 32), "perfeat": (32, 121), "persamp": (1, 3872), "perpatch": (9, 64),
              "perpatch_avg": (9, 32), "shuffled": (121, 32)}
    for kind, shape in shapes.items():
        tok = Tokenizer(kind)
        tokens = tok.apply(tok.init(jax.random.PRNGKey(0), x), x)
        assert tokens.shape == (2,) + shape, kind
    per_conv = Tokenizer("perconv").apply({}, x)
    assert np.array_equal(per_conv[0, 12], x[0, 1, 1])  # token (i * w + j) is position (i, j)
    per_feat = Tokenizer("perfeat").apply({}, x)
    assert np.array_equal(per_feat[0, 5], x[0, :, :, 5].reshape(-1))  # token c is channel c
    shuffled = Tokenizer("shuffled").apply({}, x)
    assert np.array_equal(np.sort(np.asarray(shuffled).reshape(2, -1)), np.sort(np.asarray(x).reshape(2, -1)))
    assert not np.array_equal(shuffled, per_conv)
    avg = Tokenizer("perpatch_avg").apply({}, x)
    assert np.allclose(avg[0, 0], x[0, :3, :3].mean((0, 1)), atol=1e-6)


def test_gap_and_aggregations():
    x = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 4, 6))
    assert np.allclose(Bottleneck("gap").apply({}, x), x.mean((1, 2)), atol=1e-6)
    tokens = x.reshape(3, 20, 6)
    assert np.allclose(aggregate(tokens, "sum"), tokens.sum(1), atol=1e-5)
    assert np.allclose(aggregate(tokens, "mean"), tokens.mean(1), atol=1e-6)
    assert aggregate(tokens, "flatten").shape == (3, 120)
    assert np.allclose(Bottleneck("perconv", aggregate="mean").apply({}, x), x.mean((1, 2)), atol=1e-6)


def test_residual_mlp_is_residual_per_block():
    net = ResidualMLP(width=8, blocks=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3))
    params = net.init(jax.random.PRNGKey(0), x)["params"]
    assert set(params) == {"embed", "block_0", "block_1", "norm"}
    assert params["block_0"]["dense_0"]["kernel"].shape == (8, 32)
    # zeroing a block's output layer makes the block the identity on the residual stream
    params = jax.tree_util.tree_map_with_path(
        lambda p, v: jnp.zeros_like(v) if "dense_1" in jax.tree_util.keystr(p) else v, params)
    embed = x @ params["embed"]["kernel"] + params["embed"]["bias"]
    expected = nn.LayerNorm().apply({"params": params["norm"]}, embed)
    assert np.allclose(net.apply({"params": params}, x), expected, atol=1e-5)
