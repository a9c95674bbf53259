"""Output heads: value, categorical policy, tanh-squashed Gaussian policy, Q (plain, dueling, C51), and
NoisyNet dense layers for Rainbow-style exploration."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from plastix.nets.per_seed import Dense, seed_dot


class NoisyDense(nn.Module):
    """Dense layer with factorised Gaussian parameter noise (Fortunato et al. 2018): ``w = mu + sigma *
    f(eps_in) f(eps_out)^T`` with ``f(e) = sign(e) sqrt|e|``, sigma initialised to ``sigma0 /
    sqrt(fan_in)``. Noise is drawn from the ``"noise"`` RNG stream unless ``deterministic``."""

    features: int
    sigma0: float = 0.5
    deterministic: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        bound = 1.0 / jnp.sqrt(fan_in)
        uniform = lambda key, shape: jax.random.uniform(key, shape, minval=-bound, maxval=bound)  # noqa: E731
        # float32 as every parameter: a weakly typed one turns strong after the first update, and every
        # jitted call of the agent would compile twice
        const = lambda value: lambda key, shape: jnp.full(shape, value, jnp.float32)  # noqa: E731
        mu_w = self.param("kernel", uniform, (fan_in, self.features))
        mu_b = self.param("bias", uniform, (self.features,))
        sigma_w = self.param("sigma_kernel", const(self.sigma0 * bound), (fan_in, self.features))
        sigma_b = self.param("sigma_bias", const(self.sigma0 * bound), (self.features,))
        matmul = lambda a, w: seed_dot(a, w, (((a.ndim - 1,), (0,)), ((), ())))  # noqa: E731
        if self.deterministic:
            return matmul(x, mu_w) + mu_b
        k_in, k_out = jax.random.split(self.make_rng("noise"))
        f = lambda e: jnp.sign(e) * jnp.sqrt(jnp.abs(e))  # noqa: E731
        e_in, e_out = f(jax.random.normal(k_in, (fan_in,))), f(jax.random.normal(k_out, (self.features,)))
        return matmul(x, mu_w + sigma_w * jnp.outer(e_in, e_out)) + mu_b + sigma_b * e_out


def _dense(features: int, noisy: bool, scale: float, name: str, deterministic: bool = False) -> nn.Module:
    if noisy:
        return NoisyDense(features, deterministic=deterministic, name=name)
    return Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros,
                 name=name)


POLICY_SCALE = 0.01
"""Initial scale of a policy's output layer: small, so the first policy is near uniform (CleanRL)."""


class CategoricalHead(nn.Module):
    """Logits of a categorical policy; small orthogonal init (0.01) keeps the first policy near uniform."""

    num_actions: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return _dense(self.num_actions, False, POLICY_SCALE, "dense")(x)


class ValueHead(nn.Module):
    """A scalar state value."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return jnp.squeeze(_dense(1, False, 1.0, "dense")(x), -1)


class QHead(nn.Module):
    """Q-values ``[..., A]``: plain, or dueling ``V + A - mean(A)`` (Wang et al. 2016). The output
    layers start small (orthogonal, ``init_scale``), so the first Q-values are near 0 rather than
    wherever unscaled inputs put them: with sparse rewards, large initial values take hundreds of target
    updates to decay and hide the reward signal."""

    num_actions: int
    dueling: bool = False
    noisy: bool = False
    init_scale: float = 0.01

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = False) -> jax.Array:
        """``deterministic``: NoisyNet layers use their mean weights (evaluation)."""
        if not self.dueling:
            return _dense(self.num_actions, self.noisy, self.init_scale, "dense", deterministic)(x)
        value = _dense(1, self.noisy, self.init_scale, "value", deterministic)(x)
        adv = _dense(self.num_actions, self.noisy, self.init_scale, "advantage", deterministic)(x)
        return value + adv - adv.mean(-1, keepdims=True)


class C51Head(nn.Module):
    """Distributional Q (Bellemare et al. 2017): ``atoms`` logits per action on a fixed support in
    ``[v_min, v_max]``; returns ``(q [..., A], logits [..., A, atoms])``; dueling optional (Rainbow)."""

    num_actions: int
    atoms: int = 51
    v_min: float = -10.0
    v_max: float = 10.0
    dueling: bool = False
    noisy: bool = False
    init_scale: float = 0.01

    def support(self) -> jax.Array:
        return jnp.linspace(self.v_min, self.v_max, self.atoms)

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = False) -> tuple[jax.Array, jax.Array]:
        shape = x.shape[:-1] + (self.num_actions, self.atoms)
        dense = _dense(self.num_actions * self.atoms, self.noisy, self.init_scale, "dense", deterministic)
        logits = dense(x).reshape(shape)
        if self.dueling:
            value = _dense(self.atoms, self.noisy, self.init_scale, "value", deterministic)(x)[..., None, :]
            logits = value + logits - logits.mean(-2, keepdims=True)
        q = (jax.nn.softmax(logits, -1) * self.support()).sum(-1)
        return q, logits


class TanhGaussianHead(nn.Module):
    """SAC's policy head: ``(mean, log_std)`` of a Gaussian squashed by tanh, log-std clipped to
    ``[log_std_min, log_std_max]``; `sample_tanh_gaussian` draws actions with their log-probability."""

    action_dim: int
    log_std_min: float = -20.0
    log_std_max: float = 2.0

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = Dense(self.action_dim, name="mean")(x)
        log_std = jnp.clip(Dense(self.action_dim, name="log_std")(x), self.log_std_min, self.log_std_max)
        return mean, log_std


def sample_tanh_gaussian(key: jax.Array, mean: jax.Array, log_std: jax.Array):
    """An action in (-1, 1) and its log-probability, with the tanh change-of-variables correction."""
    noise = jax.random.normal(key, mean.shape)
    pre = mean + jnp.exp(log_std) * noise
    log_prob = (-0.5 * noise**2 - log_std - 0.5 * jnp.log(2 * jnp.pi)).sum(-1)
    # log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), the numerically stable form
    log_prob -= (2 * (jnp.log(2.0) - pre - jax.nn.softplus(-2 * pre))).sum(-1)
    return jnp.tanh(pre), log_prob
