"""The THC score of hyper-parameter consistency (Obando-Ceron, Araujo, Courville, Castro, RLC 2024).

For one hyper-parameter with K values and a set of settings (games, agents or data regimes):

1. every (setting, value) gets an interval [l, u] (across games: mean +- population std over seeds; across
   agents or regimes: the 95% stratified-bootstrap CI of the IQM over seeds x games);
2. inside a setting, values are ranked with ties shared: sort by u descending (positions 1..K); at
   position p, best = the smallest q <= p with l_q <= u_p, worst = (the first q > p with u_q < l_p) - 1,
   or K if none; rank = (best + worst) / 2;
3. THC = mean over values of (max_s rank - min_s rank) / (K - 1), in [0, 1]: 0 when every setting ranks
   the values alike, 1 when a value is best somewhere and worst elsewhere. Its std (ddof 1) over values
   is reported beside it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def tie_aware_ranks(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Ranks (1 = best) of K values from their intervals, overlapping intervals sharing ranks."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    k = len(upper)
    order = np.argsort(-upper, kind="stable")
    lo, up = lower[order], upper[order]
    ranks = np.empty(k)
    for p in range(k):
        best = next(q for q in range(p + 1) if lo[q] <= up[p]) + 1
        below = [q for q in range(p + 1, k) if up[q] < lo[p]]
        worst = below[0] if below else k  # (first q > p strictly below, 1-based) - 1 == its 0-based index
        ranks[order[p]] = (best + worst) / 2
    return ranks


@dataclass(frozen=True)
class THC:
    """THC of one hyper-parameter: ``score`` (mean over values), ``std`` (ddof 1), the per-value spread,
    and the rank table ``ranks[setting, value]``."""

    score: float
    std: float
    per_value: np.ndarray
    ranks: np.ndarray
    values: tuple[str, ...]
    settings: tuple[str, ...]


def thc(lower: np.ndarray, upper: np.ndarray, values: Sequence[str] = (),
        settings: Sequence[str] = ()) -> THC:
    """THC from intervals ``[settings, values]``."""
    lower, upper = np.asarray(lower, float), np.asarray(upper, float)
    s, k = upper.shape
    if k < 2:
        raise ValueError(f"thc: needs at least 2 hyper-parameter values, got {k}")
    ranks = np.stack([tie_aware_ranks(lower[i], upper[i]) for i in range(s)])
    per_value = (ranks.max(0) - ranks.min(0)) / (k - 1)
    values = tuple(values) or tuple(str(i) for i in range(k))
    settings = tuple(settings) or tuple(str(i) for i in range(s))
    return THC(float(per_value.mean()), float(per_value.std(ddof=1)), per_value, ranks, values, settings)


def across_games(scores: np.ndarray, values: Sequence[str] = (), games: Sequence[str] = ()) -> THC:
    """THC with games as settings from final scores ``[values, seeds, games]``: intervals are the mean
    +- population std over seeds."""
    scores = np.asarray(scores, float)
    mean, std = scores.mean(1), scores.std(1)
    return thc((mean - std).T, (mean + std).T, values, games)


def across_groups(scores: dict[str, np.ndarray], values: Sequence[str] = (), reps: int = 2000,
                  seed: int = 0) -> THC:
    """THC with agents or data regimes as settings: ``scores[setting]`` is ``[values, seeds, games]``;
    intervals are the 95% stratified-bootstrap CIs of the IQM over seeds x games."""
    from plastix.analysis.stats import interval_estimates, iqm

    settings = list(scores)
    lower, upper = [], []
    for name in settings:
        per_value = {str(v): np.asarray(scores[name][i], float) for i, v in
                     enumerate(values or range(len(scores[name])))}
        _, cis = interval_estimates(per_value, iqm, reps=reps, seed=seed)
        lower.append([cis[v][0] for v in per_value])
        upper.append([cis[v][1] for v in per_value])
    return thc(np.array(lower), np.array(upper), values, settings)


def thc_table(path: str | Path) -> list[dict]:
    """THC across games of every (regime, hyper-parameter, agent) in a file laid out as the study's
    released data: ``data[regime][hyperparameter][agent][value] = [seeds][games]`` final scores. Entries
    whose values do not share one shape get ``thc = None`` and a ``note``."""
    data = json.loads(Path(path).read_text())["data"]
    rows = []
    for regime, hps in data.items():
        for hp, agents in hps.items():
            for agent, values in agents.items():
                if len(values) < 2:
                    continue
                shapes = {v: np.shape(x) for v, x in values.items()}
                row = {"regime": regime, "hyperparameter": hp, "agent": agent, "values": len(values)}
                if len(set(shapes.values())) > 1:  # a value misses games: which ones is not recorded
                    rows.append({**row, "thc": None, "std": None,
                                 "note": "unequal [seeds, games] shapes: " + ", ".join(
                                     f"{v} {s}" for v, s in shapes.items())})
                    continue
                result = across_games(np.array(list(values.values()), float), list(values))
                rows.append({**row, "thc": result.score, "std": result.std})
    return rows
