"""Learning-curve bands: percentile-bootstrap intervals over seeds, inside the metric's range."""

import numpy as np

from plastix.run.plots import mean_ci


def test_bands_are_bootstrap_intervals_inside_the_values_range():
    success = np.array([[0.0, 1.0, 1.0, 0.2], [1.0, 1.0, 0.0, 0.9], [0.0, 1.0, 1.0, np.nan],
                        [1.0, 1.0, 1.0, 0.4]])
    mean, lo, hi = mean_ci(success)
    np.testing.assert_allclose(mean, np.nanmean(success, 0))
    assert np.all(lo >= 0.0) and np.all(hi <= 1.0) and np.all(lo <= mean) and np.all(mean <= hi)
    assert lo[1] == hi[1] == 1.0  # every seed agrees: no width
    assert lo[0] < 0.5 < hi[0]  # four seeds split 2 / 2
    # a Student-t interval on these four seeds would leave [0, 1]: half-width t(0.975, 3) * sem
    sem = np.std(success[:, 0], ddof=1) / 2
    assert 0.5 - 3.182 * sem < 0.0 and 0.5 + 3.182 * sem > 1.0
    # the bootstrap percentiles of the mean, by hand with the same resamples
    rows = np.random.default_rng(0).integers(0, 4, (2000, 4))
    boot = success[:, 2][rows].mean(1)
    np.testing.assert_allclose([lo[2], hi[2]], np.percentile(boot, [2.5, 97.5]))


def test_one_seed_has_no_band():
    mean, lo, hi = mean_ci(np.array([[0.3, 0.7]]))
    np.testing.assert_array_equal(mean, lo)
    np.testing.assert_array_equal(mean, hi)
