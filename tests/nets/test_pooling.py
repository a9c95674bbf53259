"""max_pool: flax's values and gradients (the first maximum of a window takes its gradient, as
select_and_scatter gives it), ties and odd sizes included."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.nets.pooling import max_pool


@pytest.mark.parametrize("shape", [(2, 9, 9, 3), (3, 8, 7, 2), (1, 5, 5, 1)])
@pytest.mark.parametrize("window,strides", [((3, 3), (2, 2)), ((2, 2), (2, 2)), ((3, 2), (1, 2))])
@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_values_and_gradients_are_flax_s(shape, window, strides, padding):
    key_x, key_g = jax.random.split(jax.random.PRNGKey(sum(shape) + 7 * window[0] + strides[1]))
    x = jax.random.randint(key_x, shape, 0, 3).astype(jnp.float32)  # three levels: ties everywhere
    want = nn.max_pool(x, window, strides, padding)
    np.testing.assert_array_equal(max_pool(x, window, strides, padding), want)
    weights = jax.random.normal(key_g, want.shape)
    grad = lambda pool: jax.grad(lambda x: (pool(x, window, strides, padding) * weights).sum())(x)  # noqa: E731
    # equal but for the order overlapping windows' gradients are summed in (a float rounding)
    np.testing.assert_allclose(grad(max_pool), grad(nn.max_pool), rtol=1e-6, atol=1e-6)


def test_unknown_padding_is_refused():
    with pytest.raises(ValueError, match="padding"):
        max_pool(jnp.zeros((1, 4, 4, 1)), (2, 2), (2, 2), "FULL")


def test_vmapped_and_leading_axes_are_flax_s():
    x = jax.random.randint(jax.random.PRNGKey(3), (2, 3, 7, 7, 4), 0, 3).astype(jnp.float32)
    ours = lambda x: max_pool(x, (3, 3), (2, 2), "SAME")  # noqa: E731
    theirs = lambda x: nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")  # noqa: E731
    loss = lambda pool: lambda x: (pool(x) ** 2).sum()  # noqa: E731
    np.testing.assert_array_equal(ours(x), jax.vmap(theirs)(x))  # two leading axes at once
    np.testing.assert_allclose(jax.vmap(jax.grad(loss(ours)))(x), jax.vmap(jax.grad(loss(theirs)))(x),
                               rtol=1e-6, atol=1e-6)
