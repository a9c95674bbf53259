"""k-NN mutual-information estimators against closed forms, and the representation analysis of a run."""

import json

import numpy as np
import pytest

from plastix.analysis.representation import (
    discounted_returns,
    ksg,
    linear_probe_accuracy,
    linear_probe_r2,
    ross,
)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_ksg_matches_correlated_gaussians(rho):
    rng = np.random.default_rng(0)
    n, d = 2000, 2  # two independent pairs of correlated coordinates
    x = rng.normal(size=(n, d))
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=(n, d))
    exact = -d / 2 * np.log(1 - rho**2)
    assert abs(ksg(x, y) - exact) < 0.08 + 0.05 * exact


def test_ross_matches_closed_forms():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 2000)
    far = rng.normal(size=(2000, 2)) + 20.0 * labels[:, None]  # the label is readable: I = H(Y)
    assert abs(ross(far, labels) - np.log(2)) < 0.05
    same = rng.normal(size=(2000, 2))  # independent of the label: I = 0
    assert ross(same, labels) < 0.03
    four = rng.integers(0, 4, 2000)
    assert abs(ross(rng.normal(size=(2000, 3)) + 30.0 * four[:, None], four) - np.log(4)) < 0.08


def test_linear_probes():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 5))
    labels = (x[:, 0] + 0.1 * rng.normal(size=1000) > 0).astype(int)
    assert linear_probe_accuracy(x, labels) > 0.9
    assert linear_probe_accuracy(rng.normal(size=(1000, 5)), labels) < 0.65
    target = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0])
    assert linear_probe_r2(x, target) > 0.99
    assert linear_probe_r2(rng.normal(size=(1000, 5)), target) < 0.05


def test_discounted_returns():
    reward = np.array([[1.0], [0.0], [2.0], [5.0]])
    done = np.array([[False], [False], [True], [False]])
    ret, complete = discounted_returns(reward, done, 0.5)
    assert np.allclose(ret[:3, 0], [1 + 0.25 * 2, 0.5 * 2, 2])
    assert complete[:, 0].tolist() == [True, True, True, False]


@pytest.mark.slow  # trains a run, then analyses both seeds (~40 CPU-seconds)
def test_analyze_representations_from_a_run(tmp_path):
    from plastix.cli import analyze_command, train_command

    args = ["--env", "MiniGrid-Empty-5x5-v0", "--total-steps", "4096", "--seeds", "2", "--log-every",
            "4096", "--eval-episodes", "2", "--no-progress", "--out-dir", str(tmp_path), "--name", "r"]
    assert train_command(args) == 0
    assert analyze_command(["representations", str(tmp_path / "r"), "--samples", "300", "--envs", "16",
                            "--steps", "64"]) == 0
    out = json.loads((tmp_path / "r" / "representations.json").read_text())
    assert len(out["per_seed"]) == 2 and len(out["samples_per_seed"]) == 2
    for latent in ("actor", "critic"):
        seeds = [r[latent] for r in out["per_seed"]]
        assert {"mi/action", "mi/return", "mi/next_latent", "mi/transition_action", "probe_acc/action"} <= \
            set(seeds[0])
        assert all(np.isfinite(v) for r in seeds for v in r.values())
        assert all(v >= 0 for r in seeds for k, v in r.items() if k.startswith("mi/"))
        for metric, m in out["mean"][latent].items():  # the mean over seeds, inside its interval
            np.testing.assert_allclose(m, np.mean([r[metric] for r in seeds]))
            lo, hi = out["ci"][latent][metric]
            assert lo - 1e-9 <= m <= hi + 1e-9
    assert out["shared"] == "none"  # separate networks: the paired difference over seeds
    for metric, m in out["difference"]["mean"].items():
        seeds = [r["critic"][metric] - r["actor"][metric] for r in out["per_seed"]]
        np.testing.assert_allclose(m, np.mean(seeds))
    assert (tmp_path / "r" / "plots" / "representations.png").stat().st_size > 0
    table = (tmp_path / "compare" / "representations.md").read_text()
    assert "mi/transition_action" in table and "| r | actor |" in table and "| r | critic - actor |" in table
