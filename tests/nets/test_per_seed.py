"""per_seed's convolution and product: lax's values and gradients under any vmap, one operation per seed
on CPU (no grouped convolution, no batched product), and Flax's parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from plastix.nets.per_seed import Conv, Dense, seed_conv, seed_dot

DN = lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # NHWC, HWIO, as Flax's Conv


def conv_with(op):
    return lambda x, w: op(x, w, (2, 2), [(1, 1), (1, 1)], dimension_numbers=DN)


def dot_with(op):
    return lambda x, w: op(x, w, (((x.ndim - 1,), (0,)), ((), ())))


CASES = {"conv": (conv_with(lax.conv_general_dilated), conv_with(seed_conv), (4, 9, 9, 3), (3, 3, 3, 5)),
         "dot": (dot_with(lax.dot_general), dot_with(seed_dot), (4, 7), (7, 6))}


def _loss(op):
    return lambda w, x: jnp.sum(jnp.tanh(op(x, w)) ** 2)


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("seeds", [1, 3])
def test_values_and_gradients_under_vmap_are_lax(kind, seeds):
    reference, op, x_shape, w_shape = CASES[kind]
    kx, kw = jax.random.split(jax.random.PRNGKey(seeds))
    x = jax.random.normal(kx, (seeds,) + x_shape)
    w = jax.random.normal(kw, (seeds,) + w_shape)
    for in_axes in ((0, 0), (None, 0), (0, None)):  # inputs and kernels per seed, or one shared
        args = (w if in_axes[0] is not None else w[0], x if in_axes[1] is not None else x[0])
        for f in (lambda o: o, jax.grad):
            want = jax.jit(jax.vmap(f(_loss(reference)), in_axes=in_axes))(*args)
            got = jax.jit(jax.vmap(f(_loss(op)), in_axes=in_axes))(*args)
            np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_nested_vmaps_over_kernels_are_lax(kind):
    reference, op, x_shape, w_shape = CASES[kind]
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (2, 3) + x_shape)
    w = jax.random.normal(kw, (2, 3) + w_shape)
    twice = lambda o: jax.jit(jax.vmap(jax.vmap(jax.grad(_loss(o)))))  # noqa: E731
    np.testing.assert_allclose(twice(op)(w, x), twice(reference)(w, x), rtol=2e-5, atol=2e-5)


def _compiled_ops(net: nn.Module, seeds: int) -> tuple[list[str], list[str]]:
    """The convolutions and products XLA compiles for ``net``'s gradient vmapped over seeds' parameters and
    batches (as a training loop's)."""
    x = jax.random.normal(jax.random.PRNGKey(1), (seeds, 2, 6, 6, 3))
    params = jax.vmap(lambda k: net.init(k, x[0]))(jax.random.split(jax.random.PRNGKey(0), seeds))
    grad = jax.vmap(jax.grad(lambda p, x: net.apply(p, x).sum()))
    hlo = jax.jit(grad).lower(params, x).compile().as_text().splitlines()
    return [line for line in hlo if " convolution(" in line], [line for line in hlo if " dot(" in line]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the per-seed rule is XLA:CPU's")
def test_vmap_over_seeds_runs_one_operation_per_seed_on_cpu():
    """A Conv -> Dense network's gradient vmapped over 3 seeds' parameters compiles to ungrouped
    convolutions (forward and kernel gradient per seed) and products that do not span the seeds (no batch
    dimension, no 3 x 288 = 864 axis), where lax's batching makes grouped convolutions and products over
    all seeds at once."""

    def spans_seeds(dot: str) -> bool:
        return "lhs_batch_dims" in dot or "864" in dot.split(" dot(")[0]

    def net(conv, dense):
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                return dense(4)(nn.relu(conv(8, (3, 3))(x)).reshape(x.shape[0], -1))

        return Net()

    convs, dots = _compiled_ops(net(Conv, Dense), 3)
    assert len(convs) >= 2 * 3 and not any("feature_group_count" in c or "batch_group_count" in c
                                           for c in convs)
    assert dots and not any(spans_seeds(d) for d in dots)
    convs, dots = _compiled_ops(net(nn.Conv, nn.Dense), 3)  # what the test tells apart
    assert any("feature_group_count=3" in c or "batch_group_count=3" in c for c in convs)
    assert any(spans_seeds(d) for d in dots)


def test_flax_modules_are_flax_s_with_the_same_parameters():
    x = jnp.ones((2, 8, 8, 3))
    for ours, theirs in ((Conv(4, (3, 3)), nn.Conv(4, (3, 3))), (Dense(5), nn.Dense(5))):
        p_ours, p_theirs = ours.init(jax.random.PRNGKey(1), x), theirs.init(jax.random.PRNGKey(1), x)
        jax.tree.map(np.testing.assert_array_equal, p_ours, p_theirs)
        np.testing.assert_allclose(ours.apply(p_ours, x), theirs.apply(p_theirs, x), rtol=1e-6)
