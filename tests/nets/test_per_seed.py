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


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


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
        for f in (lambda o: o, lambda o: jax.grad(o, argnums=(0, 1))):
            want = jax.jit(jax.vmap(f(_loss(reference)), in_axes=in_axes))(*args)
            got = jax.jit(jax.vmap(f(_loss(op)), in_axes=in_axes))(*args)
            jax.tree.map(_close, got, want)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_nested_vmaps_over_kernels_are_lax(kind):
    reference, op, x_shape, w_shape = CASES[kind]
    kx, kw = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (2, 3) + x_shape)
    w = jax.random.normal(kw, (2, 3) + w_shape)
    twice = lambda o: jax.jit(jax.vmap(jax.vmap(jax.grad(_loss(o), argnums=(0, 1)))))  # noqa: E731
    jax.tree.map(_close, twice(op)(w, x), twice(reference)(w, x))
    # seeds outside, a batch of inputs inside that shares each seed's kernel
    inner = lambda o: jax.jit(jax.vmap(jax.vmap(jax.grad(_loss(o), argnums=(0, 1)),  # noqa: E731
                                                in_axes=(None, 0))))
    jax.tree.map(_close, inner(op)(w[:, 0], x), inner(reference)(w[:, 0], x))


def test_low_precision_and_preferred_types_are_lax():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 4, 9, 9, 3)).astype(jnp.bfloat16)
    w = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 3, 3, 5)).astype(jnp.bfloat16)
    close = lambda a, b: np.testing.assert_allclose(  # noqa: E731
        np.asarray(a, np.float32), np.asarray(b, np.float32), rtol=2e-2, atol=2e-2)
    for preferred in (None, jnp.float32):
        def conv(op, preferred=preferred):
            return lambda x, w: op(x, w, (1, 1), "SAME", dimension_numbers=DN,
                                   preferred_element_type=preferred)

        got, want = jax.vmap(conv(seed_conv))(x, w), jax.vmap(conv(lax.conv_general_dilated))(x, w)
        assert got.dtype == want.dtype
        close(got, want)
        grads = [jax.vmap(jax.grad(lambda w, x, op=op: conv(op)(x, w).astype(jnp.float32).sum(),
                                   argnums=(0, 1)))(w, x) for op in (seed_conv, lax.conv_general_dilated)]
        jax.tree.map(close, *grads)


def _equations(jaxpr) -> list:
    """Every equation of ``jaxpr`` and of the jaxprs inside it."""
    out = []
    for eqn in jaxpr.eqns:
        out.append(eqn)
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out.extend(_equations(inner))
    return out


def _ops(conv, dense, seeds: int) -> tuple[list, list]:
    """The convolutions and products of a Conv -> Dense network's gradient vmapped over ``seeds`` seeds'
    parameters and batches (as a training loop's)."""

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return dense(4)(nn.relu(conv(8, (3, 3))(x)).reshape(x.shape[0], -1))

    net = Net()
    x = jax.random.normal(jax.random.PRNGKey(1), (seeds, 2, 6, 6, 3))
    params = jax.vmap(lambda k: net.init(k, x[0]))(jax.random.split(jax.random.PRNGKey(0), seeds))
    eqns = _equations(jax.make_jaxpr(jax.vmap(jax.grad(lambda p, x: net.apply(p, x).sum())))(params, x).jaxpr)
    return ([e for e in eqns if e.primitive.name == "conv_general_dilated"],
            [e for e in eqns if e.primitive.name == "dot_general"])


def _grouped(conv) -> bool:
    return conv.params["feature_group_count"] > 1 or conv.params["batch_group_count"] > 1


def _batched(dot) -> bool:
    return bool(dot.params["dimension_numbers"][1][0])


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the per-seed rule is XLA:CPU's")
@pytest.mark.parametrize("seeds", [1, 3])
def test_vmap_over_seeds_convolves_seed_by_seed_on_cpu(seeds):
    """Over any number of seeds no convolution is grouped (lax's batching groups them); over one seed
    no product has a batch dimension, over several the product is lax's batched one (faster there)."""
    convs, dots = _ops(Conv, Dense, seeds)
    assert convs and not any(_grouped(c) for c in convs)
    assert dots and any(_batched(d) for d in dots) == (seeds > 1)
    convs, dots = _ops(nn.Conv, nn.Dense, seeds)  # what the test tells apart (one group over one seed)
    assert any(_grouped(c) for c in convs) == (seeds > 1) and any(_batched(d) for d in dots)


def test_flax_modules_are_flax_s_with_the_same_parameters():
    x = jnp.ones((2, 8, 8, 3))
    for ours, theirs in ((Conv(4, (3, 3)), nn.Conv(4, (3, 3))), (Dense(5), nn.Dense(5))):
        p_ours, p_theirs = ours.init(jax.random.PRNGKey(1), x), theirs.init(jax.random.PRNGKey(1), x)
        jax.tree.map(np.testing.assert_array_equal, p_ours, p_theirs)
        np.testing.assert_allclose(ours.apply(p_ours, x), theirs.apply(p_theirs, x), rtol=1e-6)
