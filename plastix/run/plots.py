"""The figures every run directory gets: learning curves (training returns, and evaluations when
logged) and neuron-activity curves. Written by `plastix.run.train` at the end of a run; `plastix.analysis`
draws everything else."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from plastix.run.logging import read_metrics  # noqa: E402

EVAL_KEYS = {"episode_return": "eval_return", "success_rate": "eval_success"}


def save(fig, out: str | Path) -> Path:
    """Save ``fig`` as PNG and PDF (same stem)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=120)
    fig.savefig(out.with_suffix(".pdf"))
    plt.close(fig)
    return out.with_suffix(".png")


def mean_ci(values: np.ndarray, level: float = 0.95, reps: int = 2000,
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 (seeds; NaNs ignored) and its percentile-bootstrap interval over seeds, which
    stays inside the values' range (a success rate's inside [0, 1]); one seed: no width."""
    values = np.asarray(values, float)
    mean = np.nanmean(values, axis=0)
    if values.shape[0] < 2:
        return mean, mean, mean
    rows = np.random.default_rng(seed).integers(0, values.shape[0], (reps, values.shape[0]))
    with warnings.catch_warnings():  # a resample of only NaN seeds has no mean
        warnings.simplefilter("ignore", RuntimeWarning)
        boot = np.nanmean(values[rows], axis=1)
        alpha = 100 * (1 - level) / 2
        lo, hi = np.nanpercentile(boot, [alpha, 100 - alpha], axis=0)
    return mean, lo, hi


def run_curve(run_dir: str | Path, key: str = "episode_return") -> tuple[np.ndarray, np.ndarray]:
    """(steps, values [seeds, points]) of a per-seed metric in a run's metrics.jsonl (None -> NaN),
    over the rows that hold it."""
    return rows_curve(read_metrics(run_dir), key)


def rows_curve(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    """`run_curve` over metric rows already read."""
    rows = [r for r in rows if key in r]
    steps = np.array([r["step"] for r in rows])
    return steps, np.array([[np.nan if v is None else v for v in r[key]] for r in rows]).T


def learning_curve(run_dir: str | Path, out: str | Path) -> Path:
    """Episode return and success rate against env steps: mean and 95% CI over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in zip(axes, ("episode_return", "success_rate"),
                              ("episode return", "success rate"), strict=True):
        for i, (k, what) in enumerate(((key, "training"), (EVAL_KEYS[key], "evaluation"))):
            steps, vals = run_curve(run_dir, k)
            if not len(steps) or np.isnan(vals).all():
                continue
            mean, lo, hi = mean_ci(vals)
            if key == "success_rate":
                lo, hi = np.clip(lo, 0, 1), np.clip(hi, 0, 1)
            ax.plot(steps, mean, color=f"C{i}", marker="." if i else None,
                    label=f"{what}: mean of {vals.shape[0]} seeds")
            ax.fill_between(steps, lo, hi, color=f"C{i}", alpha=0.25, label="95% CI")
        ax.set_xlabel("environment steps (per seed)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")
    fig.suptitle(Path(run_dir).name)
    return save(fig, out)


def activity_series(rows: list[dict]) -> dict[str, str]:
    """The overall activity keys a run logged, with labels: ``activity/dormant`` etc., or one per
    network (``activity/actor/dormant``, ...) for agents with several."""
    found = {}
    what = {"dormant": "dormant ratio", "grama": "GraMa-inactive ratio"}
    for key in sorted({k for r in rows for k in r if k.startswith("activity/")}):
        parts = key.split("/")
        if len(parts) == 2 and parts[1] in what:
            found[key] = what[parts[1]]
        elif len(parts) == 3 and parts[2] in what:
            found[key] = f"{parts[1]}: {what[parts[2]]}"
    if any("activity/reset_fraction" in r for r in rows):
        found["activity/reset_fraction"] = "share of neurons reset"
    return found


def activity_curves(run_dir: str | Path, out: str | Path) -> Path:
    """Dormant and GraMa-inactive neuron ratios (overall per network, mean over seeds) and the share of
    neurons reset, against env steps."""
    rows = read_metrics(run_dir)
    steps = np.array([r["step"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (key, label) in enumerate(activity_series(rows).items()):
        vals = np.array([r.get(key, np.nan) for r in rows], float)
        if np.isfinite(vals).any():
            ax.plot(steps, vals, color=f"C{i}", label=label, marker="." if key.endswith("fraction") else None)
    ax.set_xlabel("environment steps (per seed)")
    ax.set_ylabel("fraction of neurons")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if ax.lines:  # nothing measured yet (a short run): an empty figure without a legend
        ax.legend(loc="best")
    ax.set_title(Path(run_dir).name)
    return save(fig, out)


def compare_runs(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Runs side by side: evaluation (else training) return, mean and 95% CI over seeds, and each
    overall activity ratio the runs logged, against env steps."""
    rows = {Path(d): read_metrics(d) for d in run_dirs}
    series = {}
    for r in rows.values():
        series |= {k: v for k, v in activity_series(r).items() if not k.endswith("fraction")}
    fig, axes = plt.subplots(1, 1 + len(series), figsize=(5 * (1 + len(series)), 3.8), squeeze=False)
    axes = axes[0]
    for i, d in enumerate(rows):
        key = "eval_return" if any("eval_return" in r for r in rows[d]) else "episode_return"
        steps, vals = run_curve(d, key)
        if len(steps):
            mean, lo, hi = mean_ci(vals)
            axes[0].plot(steps, mean, color=f"C{i}", label=d.name)
            axes[0].fill_between(steps, lo, hi, color=f"C{i}", alpha=0.2)
        axes[0].set_ylabel("evaluation return" if key == "eval_return" else "episode return")
        for ax, (k, label) in zip(axes[1:], series.items(), strict=True):
            pts = [(r["step"], r[k]) for r in rows[d] if k in r]
            if pts:
                ax.plot(*zip(*pts, strict=True), color=f"C{i}", label=d.name)
            ax.set_ylabel(label)
    for ax in axes:
        ax.set_xlabel("environment steps (per seed)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best")
    return save(fig, out)
