"""What the actor's and the critic's representations hold (Garcin et al. 2025): mutual information of
each latent with the action, the return, the next latent and (gridworlds) the layout, by k-NN
estimators, with linear probes as a cross-check.

- KSG (Kraskov, Stoegbauer, Grassberger 2004, estimator 1; max-norm) for two continuous variables:
  ``I = psi(k) + psi(N) - <psi(n_x + 1) + psi(n_y + 1)>``; the pairwise max-norm distances are one fused,
  jitted reduction per block of rows (about a second for 4,096 samples of a 64-wide latent on a CPU; the
  max-norm is kept because Euclidean marginals lose far more of the information in 16+ dimensions);
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
from plastix.analysis.stats import interval_estimates
from plastix.analysis.stats import mean as stats_mean
from plastix.envs.api import EnvSpec, task_ids
from plastix.run.checkpoint import ResumeError
from plastix.run.load import load


def _chunks(n: int, size: int = 1024) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _dist(a: np.ndarray, b: np.ndarray, b_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[len(a), len(b)]`` from one matrix product (``b_sq`` = squared row norms)."""
    d2 = (a * a).sum(1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(d2, 0.0))


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    return (x - x.mean(0)) / (x.std(0) + 1e-12)


def _jitter(x: np.ndarray, seed: int = 0, scale: float = 1e-6) -> np.ndarray:
    """Standardised ``x`` plus ``scale`` noise: repeated points (discrete observations) would make k-NN
    distances zero (scikit-learn adds noise too). The scale stays above the rounding of the distances
    (float64 matrix products for Ross, float32 differences for KSG) and far below the data's unit scale."""
    x = _standardise(x)
    return x + scale * np.random.default_rng(seed).standard_normal(x.shape)


def _kth(d: np.ndarray, offset: int, k: int) -> np.ndarray:
    """Distance of each row's k-th neighbour, the point itself (column ``row + offset``) left out."""
    rows = np.arange(len(d))
    d[rows, rows + offset] = np.inf
    return np.partition(d, k - 1, axis=1)[:, k - 1]


@jax.jit
def _cheb(a: jax.Array, b: jax.Array) -> jax.Array:
    """Max-norm distances ``[len(a), len(b)]``, one fused reduction (no ``[A, B, d]`` intermediate)."""
    return jnp.abs(a[:, None, :] - b[None, :, :]).max(-1)


def ksg(x: np.ndarray, y: np.ndarray, k: int = 3, block: int = 256) -> float:
    """KSG estimate of I(X; Y) in nats for samples ``x [N, dx]`` and ``y [N, dy]`` (each standardised)."""
    x, y = _jitter(x, 0, 1e-5).astype(np.float32), _jitter(y, 1, 1e-5).astype(np.float32)
    n = len(x)
    nx, ny = np.empty(n), np.empty(n)
    for s in _chunks(n, block):
        rows = np.arange(s.start, s.start + block) % n  # a fixed block shape: one compilation
        dx, dy = (np.asarray(_cheb(v[rows], v))[: s.stop - s.start] for v in (x, y))
        eps = _kth(np.maximum(dx, dy), s.start, k)  # selection on the host: XLA's CPU top_k is slow
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
    x_sq = (x * x).sum(1)
    radius = np.empty(n)
    for value in count_of:
        idx = np.flatnonzero(labels == value)
        for s in _chunks(len(idx)):
            radius[idx[s]] = _kth(_dist(x[idx[s]], x[idx], x_sq[idx]), s.start, k)
    m = np.empty(n)
    for s in _chunks(n):
        m[s] = (_dist(x[s], x, x_sq) < radius[s, None]).sum(1)
    n_y = np.array([count_of[v] for v in labels])
    return max(0.0, float(digamma(n) + digamma(k) - np.mean(digamma(n_y)) - np.mean(digamma(m))))


def _split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(0.8 * n)
    return perm[:cut], perm[cut:]


_PROBE_OPT = optax.adam(0.05)


@jax.jit(static_argnames=("steps",))
def _fit_softmax(x: jax.Array, y: jax.Array, w: jax.Array, b: jax.Array, steps: int) -> tuple:
    """Softmax regression by Adam (weight decay 1e-4), compiled once per shape rather than per call."""
    def loss(p):
        xent = optax.softmax_cross_entropy_with_integer_labels(x @ p[0] + p[1], y).mean()
        return xent + 1e-4 * (p[0] ** 2).sum()

    def step(carry, _):
        p, s = carry
        u, s = _PROBE_OPT.update(jax.grad(loss)(p), s, p)
        return (optax.apply_updates(p, u), s), None

    return jax.lax.scan(step, ((w, b), _PROBE_OPT.init((w, b))), None, steps)[0][0]


def linear_probe_accuracy(x: np.ndarray, labels: np.ndarray, steps: int = 500, seed: int = 0) -> float:
    """Held-out accuracy (20%) of a softmax regression from ``x`` to ``labels``."""
    x = _standardise(x).astype(np.float32)
    values, y = np.unique(np.asarray(labels).reshape(-1), return_inverse=True)
    train, test = _split(len(x), seed)
    w, b = _fit_softmax(x[train], y[train], jnp.zeros((x.shape[1], len(values))), jnp.zeros(len(values)),
                        steps)
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


def latents(network: Any, params: Any, obs: jax.Array, batch: int = 1024,
            spec: EnvSpec | None = None) -> dict[str, np.ndarray]:
    """The features each head reads (the output of ``actor_torso`` / ``critic_torso``, or the shared
    ``torso`` for both) for observations ``[B, ...]``; with the env's ``spec``, the network also gets the
    task ids its observations carry (task-routed experts need them, as in training)."""
    towers = ("actor_torso", "critic_torso", "torso")
    pick = lambda mdl, method: method == "__call__" and len(mdl.path) == 1 and mdl.name in towers  # noqa: E731
    tasks = (lambda x: None) if spec is None else (lambda x: task_ids(x, spec))  # noqa: E731
    apply = jax.jit(lambda x: network.apply({"params": params}, x, tasks(x), capture_intermediates=pick,
                                            mutable=["intermediates"])[1]["intermediates"])
    parts: dict[str, list] = {}
    for start in range(0, len(obs), batch):
        for name, value in apply(obs[start:start + batch]).items():
            parts.setdefault(name, []).append(np.asarray(value["__call__"][0]))
    out = {name: np.concatenate(v) for name, v in parts.items()}
    if "torso" in out:
        out = {"actor_torso": out["torso"], "critic_torso": out["torso"]}
    return {"actor": out["actor_torso"], "critic": out["critic_torso"]}


def _seed_results(run: Any, seed_index: int, num_envs: int, num_steps: int, samples: int, k: int,
                  key: int) -> dict[str, dict[str, float]]:
    """One seed's latents from its parameters, on a rollout of its own policy."""
    config, env, agent = run.config, run.env, run.agent
    params = jax.tree.map(lambda x: x[seed_index], jax.device_get(run.runner.agent.params))
    data = jax.tree.map(np.asarray, collect(agent, params, env, jax.random.PRNGKey(key + seed_index),
                                            num_envs, num_steps))
    t, n = data["done"].shape
    returns, complete = discounted_returns(data["reward"], data["done"], config.ppo.gamma)
    flat_obs = data["obs"].reshape((t * n,) + data["obs"].shape[2:])
    found = latents(agent.network, params, flat_obs, spec=agent.spec)
    shared = found["actor"] is found["critic"]
    lat = {name: z.reshape(t, n, -1) for name, z in found.items()}
    # samples with a complete return and a successor in the same episode
    valid = complete.copy()
    valid[-1] = False
    valid &= ~data["done"]
    ts, ns = np.nonzero(valid)
    pick = np.random.default_rng(key + seed_index).permutation(len(ts))[:samples]
    ts, ns = ts[pick], ns[pick]
    _, layout_ids = np.unique(data["layout"][ts, ns], return_inverse=True)
    results = {}
    for name, z in lat.items():
        if name == "critic" and shared:  # one torso: the critic reads the actor's latent
            results[name] = dict(results["actor"])
            continue
        action = data["action"][ts, ns]
        targets = {"action": action, "return": returns[ts, ns], "next_latent": z[ts + 1, ns],
                   "layout": layout_ids}
        if len(np.unique(layout_ids)) < 2:
            targets.pop("layout")
        results[name] = information(z[ts, ns], targets, k)
        # the dynamics term ((Z_t, Z_t+1); A_t): what a transition in latent space says about the action
        results[name]["mi/transition_action"] = ross(np.concatenate([z[ts, ns], z[ts + 1, ns]], 1), action, k)
    results["samples"] = {"count": float(len(ts))}
    return results


def analyze(run_dir: str | Path, num_envs: int = 64, num_steps: int = 256, samples: int = 4096, k: int = 3,
            key: int = 0, reps: int = 2000) -> dict[str, Any]:
    """From a run's last checkpoint, for every seed: roll out its policy and measure what the actor's and
    the critic's latents hold about the action, the return, the next latent (dynamics: ``(Z_t; Z_t+1)``
    and ``((Z_t, Z_t+1); A_t)``) and the layout; then the mean over seeds with a 95% bootstrap interval.
    Writes ``representations.json`` and ``plots/representations.png`` in the run directory."""
    run = load(run_dir)
    run.loop.close()
    if not hasattr(run.agent, "network") or run.config.agent != "ppo":
        raise ResumeError(f"analyze representations: needs an actor-critic run (ppo); {run.run_dir} is "
                          f"{run.config.agent}")
    per_seed = [_seed_results(run, i, num_envs, num_steps, samples, k, key) for i in range(run.config.seeds)]
    counts = [r.pop("samples")["count"] for r in per_seed]
    summary = summarise(per_seed, reps)
    shared = run.config.net.shared == "all"
    if not shared:  # paired over seeds: both latents were measured on the same samples
        difference = summarise([{"critic - actor": {m: r["critic"][m] - r["actor"][m] for m in r["critic"]}}
                                for r in per_seed], reps)
        summary["difference"] = {"mean": difference["mean"]["critic - actor"],
                                 "ci": difference["ci"]["critic - actor"]}
    out = {"samples_per_seed": [int(c) for c in counts], "k": k, "seeds": run.config.seeds,
           "shared": run.config.net.shared, **summary, "per_seed": per_seed}
    (run.run_dir / "representations.json").write_text(json.dumps(out, indent=2))
    representation_bars({run.run_dir.name: view(out)}, run.run_dir / "plots" / "representations.png")
    return out


def view(result: dict[str, Any], difference: bool = False) -> dict[str, Any]:
    """The latents to show: one ``torso`` for a shared network (actor and critic read the same features),
    else ``actor`` and ``critic`` (and, with ``difference``, the paired ``critic - actor``)."""
    if result["shared"] == "all":
        name = "torso (shared)"
        return {"mean": {name: result["mean"]["actor"]}, "ci": {name: result["ci"]["actor"]}}
    mean, ci = dict(result["mean"]), dict(result["ci"])
    if difference and "difference" in result:
        mean["critic - actor"] = result["difference"]["mean"]
        ci["critic - actor"] = result["difference"]["ci"]
    return {"mean": mean, "ci": ci}


def summarise(per_seed: list[dict[str, dict[str, float]]], reps: int = 2000) -> dict[str, Any]:
    """Mean over seeds of every latent's metrics with 95% percentile-bootstrap intervals over seeds:
    ``{"mean": {latent: {metric: m}}, "ci": {latent: {metric: [lo, hi]}}}``."""
    means: dict[str, dict[str, float]] = {}
    cis: dict[str, dict[str, list[float]]] = {}
    for latent in per_seed[0]:
        scores = {m: np.array([[r[latent][m]] for r in per_seed]) for m in per_seed[0][latent]}
        points, intervals = interval_estimates(scores, stats_mean, reps=reps)
        means[latent], cis[latent] = points, {m: list(v) for m, v in intervals.items()}
    return {"mean": means, "ci": cis}


def table(runs: dict[str, dict[str, Any]]) -> str:
    """A markdown table, one row per run and latent, every metric's mean [95% CI] over seeds (``runs``:
    label -> `view`)."""
    keys = sorted({k for s in runs.values() for m in s["mean"].values() for k in m})
    lines = ["| run | latent | " + " | ".join(keys) + " |", "|---|---|" + "---|" * len(keys)]
    for label, s in runs.items():
        for latent, m in s["mean"].items():
            ci = s["ci"][latent]
            cells = [f"{m[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in m else "-" for k in keys]
            lines.append(f"| {label} | {latent} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare(run_dirs: list[str | Path], out: str | Path | None = None, **kwargs: Any) -> Path:
    """`analyze` each run (every seed), then one figure and one table of all of them side by side (shared vs
    decoupled, actor vs critic) in ``out`` (default ``<parent of the first run>/compare``)."""
    dirs = [Path(d) for d in run_dirs]
    runs = {}
    for d in dirs:
        runs[d.name] = analyze(d, **kwargs)
    out = Path(out) if out is not None else dirs[0].parent / "compare"
    out.mkdir(parents=True, exist_ok=True)
    representation_bars({name: view(r) for name, r in runs.items()}, out / "representations.png")
    path = out / "representations.md"
    path.write_text(table({name: view(r, difference=True) for name, r in runs.items()}))
    return path

