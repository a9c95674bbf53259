"""Figures from run directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plastix.run.plots import mean_ci, save  # noqa: E402


def representation_bars(runs: dict[str, dict[str, Any]], out: str | Path) -> Path:
    """Mutual information (nats) of each run's actor and critic latents with each target: means over
    seeds with 95% bootstrap intervals (``runs``: label -> `representation.summarise` output)."""
    bars = [(f"{label}: {latent}" if len(runs) > 1 else latent, s["mean"][latent], s["ci"][latent])
            for label, s in runs.items() for latent in s["mean"]]
    keys = sorted({k for _, m, _ in bars for k in m if k.startswith("mi/")})
    fig, ax = plt.subplots(figsize=(1.9 * len(keys) + 2, 3.8))
    width = 0.8 / max(len(bars), 1)
    for i, (name, m, ci) in enumerate(bars):
        x = np.arange(len(keys)) + i * width
        y = np.array([m.get(k, np.nan) for k in keys])
        err = np.array([[y[j] - ci[k][0], ci[k][1] - y[j]] if k in ci else [0, 0]
                        for j, k in enumerate(keys)])
        ax.bar(x, y, width, yerr=err.T, capsize=2, label=name, color=f"C{i}")
    ax.set_xticks(np.arange(len(keys)) + width * (len(bars) - 1) / 2, [k[3:] for k in keys], fontsize=8)
    ax.set_ylabel("mutual information (nats, k-NN)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return save(fig, out)


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
    return save(fig, out)


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
    return save(fig, out)


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
    return save(fig, out)


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
    return save(fig, out)


def scaling_plot(runs: list[dict], out: str | Path) -> Path:
    """Final success against parameter count: left, against critic parameters, one line per actor size;
    right, against actor parameters, one line per critic size (means over seeds, std as error bars)."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, (x, group) in zip(axes, (("critic", "actor"), ("actor", "critic")), strict=True):
        for i, g in enumerate(sorted({r[group] for r in runs})):
            sel = sorted((r for r in runs if r[group] == g), key=lambda r: r[x])
            ax.errorbar([r[x] for r in sel], [r["success"].mean() for r in sel],
                        yerr=[r["success"].std() for r in sel], marker="o", capsize=3, color=f"C{i}",
                        label=f"{group} {g:,} params")
        ax.set_xscale("log")
        ax.set_xlabel(f"{x} parameters")
        ax.set_ylabel("final evaluation success")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save(fig, out)


def taskmix_bars(results: dict[str, dict[str, dict]], out: str | Path) -> Path:
    """One row of panels per regime: each setting's return (mean over tasks, 95% CI over seeds), then its
    actor's and critic's dormant and GraMa-inactive ratios (``results``: regime -> setting -> values)."""
    settings = list(dict.fromkeys(s for per in results.values() for s in per))
    fig, axes = plt.subplots(len(results), 3, figsize=(15, 0.32 * len(settings) * len(results) + 1.5),
                             squeeze=False, sharex="col")
    y = np.arange(len(settings))
    for row, (regime, per) in zip(axes, results.items(), strict=True):
        ret = np.array([per[s]["return"] if s in per else (np.nan,) * 3 for s in settings])
        row[0].barh(y, ret[:, 0], xerr=np.abs(ret[:, 1:].T - ret[:, 0]), color="C0", alpha=0.8, capsize=2)
        row[0].set_xlabel("training return, mean over tasks")
        row[0].set_title(regime, fontsize=9, loc="left")
        for ax, metric in zip(row[1:], ("dormant", "grama"), strict=True):
            for i, net in enumerate(("actor", "critic")):
                ax.barh(y + (i - 0.5) * 0.4, [per[s]["activity"][f"{metric}/{net}"] if s in per else np.nan
                                              for s in settings], 0.4, color=f"C{i + 1}", label=net)
            ax.set_xlabel(f"{'dormant' if metric == 'dormant' else 'GraMa-inactive'} ratio (last quarter)")
            ax.legend(fontsize=7)
        for ax in row:
            ax.set_yticks(y, settings if ax is row[0] else [], fontsize=7)
            ax.invert_yaxis()
            ax.grid(alpha=0.3, axis="x")
    return save(fig, out)


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
    return save(fig, out)
