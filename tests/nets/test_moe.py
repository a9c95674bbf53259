"""Mixture-of-experts routing checked against direct numpy computations on tiny inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.nets.build import ActorCritic, MoEConfig, NetConfig
from plastix.nets.heads import POLICY_SCALE
from plastix.nets.moe import (
    LOSSES,
    MOE_STATS,
    ExpertChoiceMoE,
    SoftMoE,
    TaskMoE,
    TopKMoE,
    expert_choice_assign,
    soft_routing,
    topk_assign,
)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _expert_np(p, i, x):
    """Expert i (Dense -> ReLU -> Dense) in numpy."""
    h = np.maximum(x @ p["dense_0"]["kernel"][i] + p["dense_0"]["bias"][i], 0)
    return h @ p["dense_1"]["kernel"][i] + p["dense_1"]["bias"][i]


def test_softmoe_matches_numpy():
    m, d, n, p = 3, 2, 2, 2
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (m, d)))
    moe = SoftMoE(experts=n, hidden=(5,), slots=p)
    params = jax.tree.map(np.asarray, moe.init(jax.random.PRNGKey(1), x)["params"])
    phi = params["phi"].reshape(d, n, p)
    logits = np.einsum("md,dnp->mnp", x, phi)
    dispatch = _softmax(logits, 0)  # over tokens, per slot
    combine = _softmax(logits.reshape(m, n * p), 1).reshape(m, n, p)  # over all slots, per token
    slots = np.einsum("mnp,md->npd", dispatch, x)
    outs = np.stack([_expert_np(params["experts"], i, slots[i]) for i in range(n)])  # [n, p, d]
    expected = np.einsum("mnp,npd->md", combine, outs)
    assert np.allclose(moe.apply({"params": params}, x), expected, atol=1e-5)
    # batched observations route independently: same answer per row
    xb = np.stack([x, 2 * x])
    assert np.allclose(moe.apply({"params": params}, xb)[0], expected, atol=1e-5)


def test_soft_routing_weights_are_distributions():
    logits = jax.random.normal(jax.random.PRNGKey(2), (4, 7, 3, 2)) * 3  # [batch, m, n, p]
    dispatch, combine = soft_routing(logits)
    assert np.allclose(dispatch.sum(1), 1.0, atol=1e-5)  # over tokens, for every slot
    assert np.allclose(combine.sum((2, 3)), 1.0, atol=1e-5)  # over slots, for every token


def test_softmoe_slots_from_capacity_and_options():
    x = jnp.ones((10, 4))
    params = SoftMoE(experts=4, hidden=(3,), capacity_factor=2.0).init(jax.random.PRNGKey(0), x)["params"]
    assert params["phi"].shape == (4, 4 * 5)  # ceil(10 * 2 / 4) slots per expert
    normed = SoftMoE(experts=2, hidden=(3,), normalize=True)
    params = normed.init(jax.random.PRNGKey(0), x)["params"]
    assert "scale" in params
    frozen = SoftMoE(experts=2, hidden=(3,), random_phi=True)
    params = frozen.init(jax.random.PRNGKey(0), x)["params"]
    grads = jax.grad(lambda p: frozen.apply({"params": p}, x).sum())(params)
    assert not np.asarray(grads["phi"]).any() and np.asarray(grads["experts"]["dense_0"]["kernel"]).any()


def test_topk_drops_exactly_the_tokens_beyond_capacity():
    m = 6
    probs = jnp.tile(jnp.array([0.9, 0.1]), (m, 1))  # every token prefers expert 0
    dispatch, combine, kept = topk_assign(probs, k=1, cap=3)
    assert np.array_equal(dispatch.sum((1, 2)), [1, 1, 1, 0, 0, 0])  # the first 3 tokens, in order
    assert np.array_equal(np.argmax(dispatch[:3, 0], -1), [0, 1, 2])  # one slot each
    assert np.allclose(combine.sum((1, 2)), [0.9, 0.9, 0.9, 0, 0, 0])
    # k = 2: first choices fill expert 0 first, then second choices go to expert 1 (capacity 3)
    dispatch2, _, _ = topk_assign(probs, k=2, cap=3)
    assert np.array_equal(dispatch2[:, 0].sum(-1), [1, 1, 1, 0, 0, 0])
    assert np.array_equal(dispatch2[:, 1].sum(-1), [1, 1, 1, 0, 0, 0])


def test_topk_module_outputs_zero_for_dropped_tokens():
    m, d = 6, 3
    x = jnp.ones((m, d)) + jnp.arange(m)[:, None] * 0.1
    moe = TopKMoE(experts=2, hidden=(4,), capacity_factor=1.0)
    params = moe.init(jax.random.PRNGKey(0), x)["params"]
    params["router"]["router"]["kernel"] = jnp.array([[5.0, -5.0]] * d)  # all tokens to expert 0
    y, stats = moe.apply({"params": params}, x, mutable=[MOE_STATS, LOSSES])
    assert np.abs(np.asarray(y[3:])).max() == 0  # dropped tokens: no expert output
    assert (np.abs(np.asarray(y[:3])).max(-1) > 0).all()  # every kept token got expert 0's output
    assert np.isclose(float(stats[MOE_STATS]["dropped"][0]), 0.5)
    assert np.allclose(stats[MOE_STATS]["load"][0], [0.5, 0.0])


@pytest.mark.parametrize("aux", ["entropy", "importance", "load"])
def test_topk_aux_losses(aux):
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 8, 4))
    moe = TopKMoE(experts=4, hidden=(4,), aux=(aux,), aux_coef=1.0)
    params = moe.init(jax.random.PRNGKey(0), x)["params"]
    _, extra = moe.apply({"params": params}, x, mutable=[LOSSES])
    loss = float(extra[LOSSES]["router"]["aux"][0])
    probs = np.asarray(jax.nn.softmax(x @ params["router"]["router"]["kernel"], -1))
    expected = {
        "entropy": -(probs * np.log(probs + 1e-9)).sum(-1).mean(),
        "importance": (probs.sum(1).var(-1) / probs.sum(1).mean(-1) ** 2).mean(),
        "load": (4 * (np.eye(4)[probs.argmax(-1)].mean(1) * probs.mean(1)).sum(-1)).mean(),
    }[aux]
    assert np.isclose(loss, expected, rtol=1e-4)


def test_expert_choice_gives_each_expert_exactly_its_capacity():
    probs = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(4), (3, 10, 4)), -1)  # [batch, m, n]
    dispatch, score = expert_choice_assign(probs, cap=3)
    assert dispatch.shape == (3, 4, 3, 10)
    assert np.array_equal(dispatch.sum((-2, -1)), np.full((3, 4), 3))  # 3 tokens per expert
    assert (np.asarray(dispatch.sum(-2)) <= 1).all()  # distinct tokens within an expert
    # the chosen tokens are the expert's top-3 by score
    top = np.sort(np.asarray(probs), axis=1)[:, ::-1][:, :3].transpose(0, 2, 1)
    assert np.allclose(score, top)


def test_expert_choice_module_matches_numpy():
    m, d, n = 5, 3, 2
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(5), (m, d)))
    moe = ExpertChoiceMoE(experts=n, hidden=(4,), capacity_factor=1.0)
    params = jax.tree.map(np.asarray, moe.init(jax.random.PRNGKey(6), x)["params"])
    probs = _softmax(x @ params["router"]["router"]["kernel"], 1)
    expected = np.zeros((m, d))
    for e in range(n):
        for t in np.argsort(-probs[:, e], kind="stable")[:3]:  # ceil(5 / 2) = 3 tokens per expert
            expected[t] += probs[t, e] * _expert_np(params["experts"], e, x[t])
    assert np.allclose(moe.apply({"params": params}, x), expected, atol=1e-5)


def test_task_moe_routes_by_task_id():
    x = jax.random.normal(jax.random.PRNGKey(7), (3, 1, 4))
    moe = TaskMoE(experts=3, hidden=(5,))
    params = jax.tree.map(np.asarray, moe.init(jax.random.PRNGKey(0), x, jnp.zeros(3, jnp.int32))["params"])
    tasks = jnp.array([2, 0, 1])
    y = moe.apply({"params": params}, x, tasks)
    for i, t in enumerate([2, 0, 1]):
        assert np.allclose(y[i, 0], _expert_np(params["experts"], t, np.asarray(x[i, 0])), atol=1e-5)
    with pytest.raises(ValueError, match="task ids"):
        moe.apply({"params": params}, x)


@pytest.mark.parametrize("position", ["final", "all", "big", "middle"])
def test_experts_that_are_the_policy_head_start_at_its_scale(position):
    """Experts in the actor's output layer are initialised like the policy head they replace (xavier x
    0.01: first logits near 0, the policy near uniform), so a mixture differs from the single network by
    its experts, not by a 100x larger first policy; the critic's and the middle position's projections
    keep the plain scale."""
    moe = MoEConfig(kind="soft", experts=3, position=position)
    cfg = NetConfig(hidden=(64, 64), activation="tanh", moe=moe)
    params = ActorCritic(cfg, 7).init(jax.random.PRNGKey(0), jnp.zeros((1, 20)))["params"]
    kernels = {"/".join(str(k.key) for k in path): np.asarray(leaf) for path, leaf in
               jax.tree_util.tree_flatten_with_path(params)[0] if path[-1].key == "kernel"}
    experts = {k: v.shape[-1] for k, v in kernels.items() if "experts" in k}
    actor_out = [k for k, out in experts.items() if k.startswith("actor_torso/") and out == 7]
    critic_out = [k for k, out in experts.items() if k.startswith("critic_torso/") and out == 1]
    assert bool(actor_out) == bool(critic_out) == (position != "middle")
    for name in actor_out + critic_out:
        fan_in, fan_out = kernels[name].shape[-2:]
        xavier = np.sqrt(2.0 / (fan_in + fan_out))
        scale = POLICY_SCALE if name in actor_out else 1.0
        np.testing.assert_allclose(kernels[name].std(), scale * xavier, rtol=0.35)
    middle = [k for k in kernels if k.startswith("actor_torso/moe") and kernels[k].shape[-1] == 64]
    for name in middle:  # a hidden projection back to the features: not a head
        assert kernels[name].std() > 0.5 * np.sqrt(2.0 / sum(kernels[name].shape[-2:]))
