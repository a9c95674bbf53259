"""What the actor's and the critic's representations hold (Garcin et al. 2025): mutual information of
each latent with the action, the return, the next latent and (gridworlds) the layout, by k-NN
estimators, with linear probes as a cross-check.

- KSG (Kraskov, Stoegbauer, Grassberger 2004, estimator 1; max-norm) for two continuous variables:
  ``I = psi(k) + psi(N) - <psi(n_x + 1) + psi(n_y + 1)>``;
- Ross (2014) for a continuous and a discrete variable: ``I = psi(N) + psi(k) - <psi(N_y)> - <psi(m)>``,
  ``m`` the points of any label closer than the k-th neighbour of the same label (itself included).

Both return nats, clipped at 0 (as scikit-learn does); k = 3 by default.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.special import digamma

from plastix.analysis.plots import representation_bars
from plastix.run.checkpoint import ResumeError
from plastix.run.load import load


def _chunks(n: int, size: int = 512) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _cheb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a[:, None, :] - b[None, :, :]).max(-1)


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return (x - x.mean(0)) / (x.std(0) + 1e-12)


def _jitter(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Standardised ``x`` plus 1e-10 noise: repeated points (discrete observations) would make k-NN
    distances zero; scikit-learn's estimators do the same."""
    x = _standardise(x)
    return x + 1e-10 * np.random.default_rng(seed).standard_normal(x.shape)


def ksg(x: np.ndarray, y: np.ndarray, k: int = 3) -> float:
    """KSG estimate of I(X; Y) in nats for samples ``x [N, dx]`` and ``y [N, dy]`` (each standardised)."""
    x, y = _jitter(x, 0), _jitter(y, 1)
    n = len(x)
    nx, ny = np.empty(n), np.empty(n)
    for s in _chunks(n):
        dx, dy = _cheb(x[s], x), _cheb(y[s], y)
        joint = np.maximum(dx, dy)
        rows = np.arange(s.stop - s.start)
        joint[rows, rows + s.start] = np.inf
        eps = np.partition(joint, k - 1, axis=1)[:, k - 1]
        nx[s] = (dx < eps[:, None]).sum(1) - 1  # minus the point itself
        ny[s] = (dy < eps[:, None]).sum(1) - 1
    return max(0.0, float(digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1))))


def ross(x: np.ndarray, labels: np.ndarray, k: int = 3) -> float:
    """Ross's estimate of I(X; Y) in nats for continuous ``x [N, d]`` and discrete ``labels [N]``.
    Labels with k or fewer samples are left out (they have no k-th neighbour)."""
    x = _jitter(x)
    labels = np.asarray(labels).reshape(-1)
    values, counts = np.unique(labels, return_counts=True)
    keep = np.isin(labels, values[counts > k])
    x, labels = x[keep], labels[keep]
    n = len(x)
    if n == 0 or len(np.unique(labels)) < 2:
        return 0.0
    count_of = dict(zip(*np.unique(labels, return_counts=True), strict=True))
    radius = np.empty(n)
    for value in count_of:
        idx = np.flatnonzero(labels == value)
        for s in _chunks(len(idx)):
            d = np.sqrt(((x[idx[s], None, :] - x[None, idx, :]) ** 2).sum(-1))
            rows = np.arange(s.stop - s.start)
            d[rows, rows + s.start] = np.inf
            radius[idx[s]] = np.partition(d, k - 1, axis=1)[:, k - 1]
    m = np.empty(n)
    for s in _chunks(n):
        d = np.sqrt(((x[s, None, :] - x[None, :, :]) ** 2).sum(-1))
        m[s] = (d < radius[s, None]).sum(1)
    n_y = np.array([count_of[v] for v in labels])
    return max(0.0, float(digamma(n) + digamma(k) - np.mean(digamma(n_y)) - np.mean(digamma(m))))


def _split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(0.8 * n)
    return perm[:cut], perm[cut:]


def linear_probe_accuracy(x: np.ndarray, labels: np.ndarray, steps: int = 500, seed: int = 0) -> float:
    """Held-out accuracy (20%) of a softmax regression from ``x`` to ``labels``."""
    x = _standardise(x).astype(np.float32)
    values, y = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    train, test = _split(len(x), seed)
    w = jnp.zeros((x.shape[1], len(values)))
    b = jnp.zeros(len(values))
    tx = optax.adam(0.05)

    def loss(p):
        logits = x[train] @ p[0] + p[1]
        xent = optax.softmax_cross_entropy_with_integer_labels(logits, y[train]).mean()
        return xent + 1e-4 * (p[0] ** 2).sum()

    @jax.jit
    def fit(p):
        def step(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(step, (p, tx.init(p)), None, steps)[0][0]

    w, b = fit((w, b))
    return float((np.argmax(x[test] @ np.asarray(w) + np.asarray(b), 1) == y[test]).mean())


def linear_probe_r2(x: np.ndarray, target: np.ndarray, ridge: float = 1e-3, seed: int = 0) -> float:
    """Held-out R^2 (20%) of a ridge regression from ``x`` to ``target`` (averaged over its columns)."""
    x = np.concatenate([_standardise(x), np.ones((len(x), 1))], 1)
    t = np.asarray(target, np.float64).reshape(len(x), -1)
    train, test = _split(len(x), seed)
    a = x[train]
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ t[train])
    resid = ((t[test] - x[test] @ w) ** 2).sum(0)
    total = ((t[test] - t[test].mean(0)) ** 2).sum(0) + 1e-12
    return float(np.mean(1 - resid / total))


def information(latent: np.ndarray, data: dict[str, np.ndarray], k: int = 3) -> dict[str, float]:
    """MI of one latent with each target in ``data`` (``action`` and ``layout`` discrete; ``return``
    and ``next_latent`` continuous), and the matching linear-probe score."""
    out: dict[str, float] = {}
    for name, target in data.items():
        if name in ("action", "layout"):
            out[f"mi/{name}"] = ross(latent, target, k)
            out[f"probe_acc/{name}"] = linear_probe_accuracy(latent, target)
        else:
            out[f"mi/{name}"] = ksg(latent, target, k)
            out[f"probe_r2/{name}"] = linear_probe_r2(latent, target)
    return out


def discounted_returns(reward: np.ndarray, done: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns-to-go ``[T, N]`` within episodes, and a mask of the steps whose episode ended inside the
    rollout (later steps have no complete return)."""
    ret = np.zeros(reward.shape, np.float64)
    complete = np.zeros(done.shape, bool)
    running = np.zeros(reward.shape[1])
    seen = np.zeros(reward.shape[1], bool)
    for t in range(len(reward) - 1, -1, -1):
        running = reward[t] + gamma * np.where(done[t], 0.0, running)
        seen = seen | done[t]
        ret[t], complete[t] = running, seen
    return ret, complete


def collect(agent: Any, params: Any, env: Any, key: jax.Array, num_envs: int, num_steps: int) -> dict:
    """Roll the policy out (sampled actions); per-step arrays ``[T, N, ...]``: observations, actions,
    rewards, dones, and a layout code (a hash of the episode's first grid, for grid envs)."""
    k_reset, k_run = jax.random.split(key)
    obs, state = jax.vmap(env.reset)(jax.random.split(k_reset, num_envs))
    agent_state = SimpleNamespace(params=params)
    grid = getattr(state, "grid", None)
    weights = None if grid is None else jax.random.randint(jax.random.PRNGKey(7), grid.shape[1:], 1, 2**20)

    def code(s):
        if weights is None:
            return jnp.zeros(num_envs, jnp.int32)
        return (s.grid.astype(jnp.int32) * weights).sum(tuple(range(1, s.grid.ndim)))

    def step(carry, k):
        obs, state, layout = carry
        k_act, k_env = jax.random.split(k)
        action, _ = agent.act(agent_state, obs, k_act)
        obs2, state2, reward, term, trunc, _ = jax.vmap(env.step)(jax.random.split(k_env, num_envs), state,
                                                                 action)
        done = term | trunc
        return (obs2, state2, jnp.where(done, code(state2), layout)), (obs, action, reward, done, layout)

    run = jax.jit(lambda c, ks: jax.lax.scan(step, c, ks)[1])
    o, a, r, d, lay = run((obs, state, code(state)), jax.random.split(k_run, num_steps))
    return {"obs": o, "action": a, "reward": r, "done": d, "layout": lay}


def latents(network: Any, params: Any, obs: jax.Array, batch: int = 1024) -> dict[str, np.ndarray]:
    """The features each head reads (the output of ``actor_torso`` / ``critic_torso``, or the shared
    ``torso`` for both) for observations ``[B, ...]``."""
    towers = ("actor_torso", "critic_torso", "torso")
    pick = lambda mdl, method: method == "__call__" and len(mdl.path) == 1 and mdl.name in towers  # noqa: E731
    apply = jax.jit(lambda x: network.apply({"params": params}, x, capture_intermediates=pick,
                                            mutable=["intermediates"])[1]["intermediates"])
    parts: dict[str, list] = {}
    for start in range(0, len(obs), batch):
        for name, value in apply(obs[start:start + batch]).items():
            parts.setdefault(name, []).append(np.asarray(value["__call__"][0]))
    out = {name: np.concatenate(v) for name, v in parts.items()}
    if "torso" in out:
        out = {"actor_torso": out["torso"], "critic_torso": out["torso"]}
    return {"actor": out["actor_torso"], "critic": out["critic_torso"]}


def analyze(run_dir: str | Path, seed_index: int = 0, num_envs: int = 64, num_steps: int = 256,
            samples: int = 2000, k: int = 3, key: int = 0) -> dict[str, dict[str, float]]:
    """From a run's last checkpoint: roll out, and measure what the actor's and the critic's latents
    hold about the action, the return, the next latent and the layout. Writes
    ``representations.json`` and ``plots/representations.png`` in the run directory."""
    run = load(run_dir)
    run_dir, config, env, agent = run.run_dir, run.config, run.env, run.agent
    if not hasattr(agent, "network") or config.agent != "ppo":
        raise ResumeError(f"analyze representations: needs an actor-critic run (ppo); {run_dir} is "
                          f"{config.agent}")
    params = jax.tree.map(lambda x: x[seed_index], jax.device_get(run.runner.agent.params))
    data = jax.tree.map(np.asarray, collect(agent, params, env, jax.random.PRNGKey(key), num_envs, num_steps))
    t, n = data["done"].shape
    returns, complete = discounted_returns(data["reward"], data["done"], config.ppo.gamma)
    flat_obs = data["obs"].reshape((t * n,) + data["obs"].shape[2:])
    lat = {name: z.reshape(t, n, -1) for name, z in latents(agent.network, params, flat_obs).items()}
    # samples with a complete return and a successor in the same episode
    valid = complete.copy()
    valid[-1] = False
    valid &= ~data["done"]
    ts, ns = np.nonzero(valid)
    pick = np.random.default_rng(key).permutation(len(ts))[:samples]
    ts, ns = ts[pick], ns[pick]
    _, layout_ids = np.unique(data["layout"][ts, ns], return_inverse=True)
    results = {}
    for name, z in lat.items():
        targets = {"action": data["action"][ts, ns], "return": returns[ts, ns],
                   "next_latent": z[ts + 1, ns], "layout": layout_ids}
        if len(np.unique(layout_ids)) < 2:
            targets.pop("layout")
        results[name] = information(z[ts, ns], targets, k)
    (run_dir / "representations.json").write_text(json.dumps(
        {"samples": int(len(ts)), "k": k, "seed_index": seed_index, "results": results}, indent=2))
    representation_bars(results, run_dir / "plots" / "representations.png", title=run_dir.name)
    return results
