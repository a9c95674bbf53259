"""Aggregate metrics with stratified-bootstrap confidence intervals (Agarwal et al. 2021, rliable), and
human-normalised Atari scores.

Score matrices are ``[runs, tasks]`` (seeds x games), as in rliable. The stratified bootstrap resamples
runs with replacement independently within each task; intervals are percentile intervals. Everything is
vectorised over bootstrap replicates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from plastix.envs.atari_scores import human_normalized

__all__ = ["human_normalized"]  # with the metrics below; it lives beside the Atari envs


def mean(scores: np.ndarray) -> np.ndarray:
    """Mean over runs and tasks (the trailing two axes)."""
    return np.asarray(scores).mean(axis=(-2, -1))


def median(scores: np.ndarray) -> np.ndarray:
    """Median over tasks of the per-task mean over runs."""
    return np.median(np.asarray(scores).mean(axis=-2), axis=-1)


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of all runs x tasks (scipy's ``trim_mean(0.25)``)."""
    s = np.asarray(scores)
    flat = np.sort(s.reshape(s.shape[:-2] + (-1,)), axis=-1)
    n = flat.shape[-1]
    cut = int(0.25 * n)
    return flat[..., cut: n - cut].mean(-1)


def optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """How far below ``gamma`` scores fall on average: ``gamma - mean(min(scores, gamma))``."""
    return gamma - np.minimum(np.asarray(scores), gamma).mean(axis=(-2, -1))


AGGREGATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": mean, "median": median, "iqm": iqm, "optimality_gap": optimality_gap}


def stratified_bootstrap(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``[reps, runs, tasks]`` resamples: for each task, its runs drawn with replacement."""
    scores = np.asarray(scores, float)
    runs, tasks = scores.shape
    idx = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[idx, np.arange(tasks)]


def interval_estimates(score_dict: dict[str, np.ndarray], metric: Callable[[np.ndarray], np.ndarray],
                       reps: int = 2000, level: float = 0.95, seed: int = 0):
    """Point estimates and ``level`` percentile intervals of ``metric`` for each algorithm's
    ``[runs, tasks]`` scores: ``({name: value}, {name: (low, high)})``.

    ``reps`` defaults to 2,000 (rliable: 50,000) so that analyses stay interactive; the endpoints' Monte
    Carlo error is then about 1% of the interval width. Pass 50_000 for publication figures."""
    rng = np.random.default_rng(seed)
    points, intervals = {}, {}
    alpha = 100 * (1 - level) / 2
    for name, scores in score_dict.items():
        points[name] = float(metric(np.asarray(scores, float)))
        boot = metric(stratified_bootstrap(scores, reps, rng))
        intervals[name] = (float(np.percentile(boot, alpha)), float(np.percentile(boot, 100 - alpha)))
    return points, intervals


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) averaged over tasks, ties counting half (the Mann-Whitney U statistic), for
    ``x [..., runs_x, tasks]`` and ``y [..., runs_y, tasks]``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    gt = (x[..., :, None, :] > y[..., None, :, :]).mean(axis=(-3, -2))
    eq = (x[..., :, None, :] == y[..., None, :, :]).mean(axis=(-3, -2))
    return (gt + 0.5 * eq).mean(-1)


def probability_of_improvement_ci(x: np.ndarray, y: np.ndarray, reps: int = 2000, level: float = 0.95,
                                  seed: int = 0) -> tuple[float, tuple[float, float]]:
    """P(X > Y) with a stratified-bootstrap interval (both score sets resampled per task)."""
    rng = np.random.default_rng(seed)
    boot = probability_of_improvement(stratified_bootstrap(x, reps, rng), stratified_bootstrap(y, reps, rng))
    alpha = 100 * (1 - level) / 2
    return float(probability_of_improvement(x, y)), (float(np.percentile(boot, alpha)),
                                                     float(np.percentile(boot, 100 - alpha)))


def performance_profile(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Run-score distribution: the share of all runs x tasks scoring above each tau."""
    s = np.asarray(scores, float)
    flat = s.reshape(s.shape[:-2] + (-1,))
    return (flat[..., None, :] > np.asarray(taus)[:, None]).mean(-1)


def performance_profile_ci(scores: np.ndarray, taus: np.ndarray, reps: int = 2000, level: float = 0.95,
                           seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(profile, lower, upper) over ``taus``, intervals from the stratified bootstrap."""
    boot = performance_profile(stratified_bootstrap(scores, reps, np.random.default_rng(seed)), taus)
    alpha = 100 * (1 - level) / 2
    low, high = np.percentile(boot, alpha, 0), np.percentile(boot, 100 - alpha, 0)
    return performance_profile(scores, taus), low, high


