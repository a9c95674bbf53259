"""Figures from run directories."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from plastix.run.logging import read_metrics  # noqa: E402


def _save(fig, out: str | Path) -> Path:
    """Save ``fig`` as PNG and PDF (same stem)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    fig.savefig(out.with_suffix(".pdf"))
    plt.close(fig)
    return out.with_suffix(".png")


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its Student-t confidence interval (NaNs ignored); one seed: no width."""
    n = np.sum(~np.isnan(values), axis=0)
    mean = np.nanmean(values, axis=0)
    sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)) if values.shape[0] > 1 \
        else np.zeros_like(mean)
    half = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1)) * np.nan_to_num(sem)
    return mean, mean - half, mean + half


def run_curve(run_dir: str | Path, key: str = "episode_return") -> tuple[np.ndarray, np.ndarray]:
    """(steps, values [seeds, points]) of a per-seed metric in a run's metrics.jsonl (None -> NaN)."""
    rows = read_metrics(run_dir)
    steps = np.array([r["step"] for r in rows])
    return steps, np.array([[np.nan if v is None else v for v in r[key]] for r in rows]).T


def learning_curve(run_dir: str | Path, out: str | Path) -> Path:
    """Episode return and success rate against env steps: mean and 95% CI over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in zip(axes, ("episode_return", "success_rate"),
                              ("episode return", "success rate"), strict=True):
        steps, vals = run_curve(run_dir, key)
        mean, lo, hi = mean_ci(vals)
        if key == "success_rate":
            lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
        ax.plot(steps, mean, color="C0", label=f"mean of {vals.shape[0]} seeds")
        ax.fill_between(steps, lo, hi, color="C0", alpha=0.25, label="95% CI")
        ax.set_xlabel("environment steps (per seed)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(Path(run_dir).name)
    return _save(fig, out)


def activity_curves(run_dir: str | Path, out: str | Path) -> Path:
    """Dormant and GraMa-inactive neuron ratios (overall, mean over seeds) and the share of neurons
    reset, against env steps."""
    rows = read_metrics(run_dir)
    steps = np.array([r["step"] for r in rows])
    series = {"activity/dormant": "dormant ratio", "activity/grama": "GraMa-inactive ratio",
              "activity/reset_fraction": "share of neurons reset"}
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (key, label) in enumerate(series.items()):
        vals = np.array([r.get(key, np.nan) for r in rows], float)
        if np.isfinite(vals).any():
            ax.plot(steps, vals, color=f"C{i}", label=label, marker="." if key.endswith("fraction") else None)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("fraction of neurons")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    ax.set_title(Path(run_dir).name)
    return _save(fig, out)


def representation_bars(results: dict[str, dict[str, float]], out: str | Path, title: str = "") -> Path:
    """Mutual information (nats) of the actor's and the critic's latents with each target."""
    keys = sorted({k for r in results.values() for k in r if k.startswith("mi/")})
    fig, ax = plt.subplots(figsize=(1.6 * len(keys) + 2, 3.6))
    width = 0.8 / max(len(results), 1)
    for i, (name, r) in enumerate(results.items()):
        ax.bar(np.arange(len(keys)) + i * width, [r.get(k, np.nan) for k in keys], width, label=name)
    ax.set_xticks(np.arange(len(keys)) + width * (len(results) - 1) / 2, [k[3:] for k in keys])
    ax.set_ylabel("mutual information (nats, k-NN)")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(title)
    return _save(fig, out)


def sweep_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], out: str | Path,
                 key: str = "episode return") -> Path:
    """Learning curves of several runs: ``{label: (steps, values [seeds, points])}``, mean and 95% CI."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (label, (steps, values)) in enumerate(curves.items()):
        mean, lo, hi = mean_ci(values)
        ax.plot(steps, mean, color=f"C{i % 10}", label=label)
        ax.fill_between(steps, lo, hi, color=f"C{i % 10}", alpha=0.2)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, out)


def aggregate_bars(points: dict[str, dict[str, float]], intervals: dict[str, dict[str, tuple]],
                   out: str | Path) -> Path:
    """One panel per aggregate (IQM, mean, ...): a bar per run with its bootstrap CI."""
    metrics = list(points)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 0.5 * len(points[metrics[0]]) + 1.5),
                             squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        labels = list(points[metric])
        vals = np.array([points[metric][k] for k in labels])
        lo = vals - np.array([intervals[metric][k][0] for k in labels])
        hi = np.array([intervals[metric][k][1] for k in labels]) - vals
        ax.barh(np.arange(len(labels)), vals, xerr=[lo, hi], color="C0", alpha=0.7, capsize=3)
        ax.set_yticks(np.arange(len(labels)), labels, fontsize=7)
        ax.set_title(metric)
        ax.grid(alpha=0.3, axis="x")
    return _save(fig, out)


def performance_profiles(profiles: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], taus: np.ndarray,
                         out: str | Path) -> Path:
    """Run-score distributions ``{label: (profile, low, high)}`` over thresholds ``taus``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, (label, (prof, lo, hi)) in enumerate(profiles.items()):
        ax.plot(taus, prof, color=f"C{i % 10}", label=label)
        ax.fill_between(taus, lo, hi, color=f"C{i % 10}", alpha=0.2)
    ax.set_xlabel("score threshold tau")
    ax.set_ylabel("fraction of runs with score > tau")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, out)


def rank_plot(values: dict[str, list], scores: dict[str, list], out: str | Path) -> Path:
    """Score against each swept hyper-parameter's values (one panel per field)."""
    fields = list(values)
    fig, axes = plt.subplots(1, len(fields), figsize=(4 * len(fields), 3.5), squeeze=False)
    for ax, name in zip(axes[0], fields, strict=True):
        xs = [str(v) for v in values[name]]
        ax.plot(range(len(xs)), scores[name], "o", color="C0")
        ax.set_xticks(range(len(xs)), xs, rotation=30, fontsize=7)
        ax.set_xlabel(name)
        ax.set_ylabel("IQM of final return")
        ax.grid(alpha=0.3)
    return _save(fig, out)


def thc_bars(scores: dict[str, tuple[float, float]], out: str | Path) -> Path:
    """THC (mean and std over values) per hyper-parameter."""
    names = list(scores)
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(names)), 3.5))
    ax.bar(range(len(names)), [scores[n][0] for n in names], yerr=[scores[n][1] for n in names],
           color="C3", alpha=0.7, capsize=3)
    ax.set_xticks(range(len(names)), names, rotation=30, fontsize=8)
    ax.set_ylabel("THC (0 consistent, 1 not)")
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, out)
