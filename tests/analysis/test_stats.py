"""Aggregate metrics and bootstrap intervals against rliable on random score matrices."""

import numpy as np
import pytest
from rliable import library as rly
from rliable import metrics as rm

from plastix.analysis import stats

RNG = np.random.default_rng(0)
SCORES = {"a": RNG.gamma(2.0, 0.5, (10, 8)), "b": RNG.gamma(2.5, 0.5, (10, 8))}


@pytest.mark.parametrize("ours, theirs", [
    (stats.mean, rm.aggregate_mean), (stats.median, rm.aggregate_median), (stats.iqm, rm.aggregate_iqm),
    (stats.optimality_gap, rm.aggregate_optimality_gap)])
def test_point_estimates_equal_rliable(ours, theirs):
    for scores in SCORES.values():
        assert np.isclose(ours(scores), theirs(scores))
    odd = RNG.normal(size=(7, 5))  # 35 scores: trimming 25% of a count that is not a multiple of 4
    assert np.isclose(ours(odd), theirs(odd))


@pytest.mark.parametrize("name", ["iqm", "median", "mean"])
def test_intervals_match_rliable_within_monte_carlo_error(name):
    ours_fn = stats.AGGREGATES[name]
    theirs_fn = {"iqm": rm.aggregate_iqm, "median": rm.aggregate_median, "mean": rm.aggregate_mean}[name]
    points, cis = stats.interval_estimates(SCORES, ours_fn, reps=4000, seed=1)
    t_points, t_cis = rly.get_interval_estimates(SCORES, lambda x: np.array([theirs_fn(x)]), reps=4000,
                                                 random_state=np.random.RandomState(1))
    for k in SCORES:
        assert np.isclose(points[k], t_points[k][0])
        width = t_cis[k][1, 0] - t_cis[k][0, 0]
        assert abs(cis[k][0] - t_cis[k][0, 0]) < 0.08 * width
        assert abs(cis[k][1] - t_cis[k][1, 0]) < 0.08 * width


def test_probability_of_improvement_and_profiles_match_rliable():
    x, y = SCORES["b"], SCORES["a"]
    assert np.isclose(stats.probability_of_improvement(x, y), rm.probability_of_improvement(x, y))
    taus = np.linspace(0, 3, 13)
    ours = stats.performance_profile(x, taus)
    theirs, _ = rly.create_performance_profile({"x": x}, taus)
    assert np.allclose(ours, theirs["x"])
    p, (lo, hi) = stats.probability_of_improvement_ci(x, y, reps=2000)
    assert lo <= p <= hi and 0 <= lo and hi <= 1


def test_stratified_bootstrap_resamples_within_tasks():
    scores = np.arange(12.0).reshape(4, 3)  # task j holds values j, j + 3, j + 6, j + 9
    boot = stats.stratified_bootstrap(scores, 50, np.random.default_rng(0))
    assert boot.shape == (50, 4, 3)
    assert ((boot % 3) == np.arange(3)).all()


def test_human_normalized():
    assert np.isclose(stats.human_normalized(7127.7, "Alien"), 1.0)
    assert np.isclose(stats.human_normalized(227.8, "ALE/Alien-v5"), 0.0)
    assert np.isclose(stats.human_normalized(6951.6, "ms_pacman"), 1.0)
    with pytest.raises(ValueError, match="game: 'Pongg'"):
        stats.human_normalized(1.0, "Pongg")
