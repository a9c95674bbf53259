"""THC against the published values of its paper, from the study's released data."""

import json
from pathlib import Path

import numpy as np
import pytest

from plastix.analysis.thc import across_games, across_groups, thc, tie_aware_ranks

DATA = Path(__file__).parent / "data" / "thc_final_perf.json"  # the study's released final scores


def test_tie_aware_ranks_by_hand():
    # A [8, 10] and B [7, 9] overlap (they share ranks 1-2); C [1, 2] is last
    assert tie_aware_ranks([8, 7, 1], [10, 9, 2]).tolist() == [1.5, 1.5, 3.0]
    assert tie_aware_ranks([0, 2, 4], [1, 3, 5]).tolist() == [3.0, 2.0, 1.0]  # disjoint
    assert tie_aware_ranks([0, 0, 0], [1, 1, 1]).tolist() == [2.0, 2.0, 2.0]  # all tied


def test_thc_extremes():
    lower = np.array([[0, 2], [2, 0]])  # value 0 best in one setting, worst in the other
    assert thc(lower, lower + 1).score == 1.0
    assert thc(np.array([[0, 2], [0, 2]]), np.array([[1, 3], [1, 3]])).score == 0.0


@pytest.mark.parametrize("regime, hp, agent, published", [
    ("40M", "target_update_periods", "DrQ_eps", 0.075), ("40M", "target_update_periods", "DER", 0.25),
    ("100k", "clip_rewards", "DrQ_eps", 1.0), ("100k", "clip_rewards", "DER", 0.5)])
def test_published_thc_values_across_games(regime, hp, agent, published):
    values = json.loads(DATA.read_text())["data"][regime][hp][agent]
    result = across_games(np.array(list(values.values())), list(values))
    assert np.isclose(result.score, published, atol=5e-4)
    assert result.ranks.shape == (26, len(values))


def test_across_groups_uses_iqm_intervals():
    rng = np.random.default_rng(0)
    good = rng.normal(2.0, 0.1, (5, 8))
    bad = rng.normal(0.0, 0.1, (5, 8))
    consistent = {"agent_a": np.stack([good, bad]), "agent_b": np.stack([good + 0.1, bad])}
    assert across_groups(consistent, ["lr_1", "lr_2"], reps=500).score == 0.0
    flipped = {"agent_a": np.stack([good, bad]), "agent_b": np.stack([bad, good])}
    assert across_groups(flipped, ["lr_1", "lr_2"], reps=500).score == 1.0


def test_thc_table_and_cli(capsys):
    from plastix.analysis.thc import thc_table
    from plastix.cli import main

    rows = thc_table(DATA)
    assert {(r["regime"], r["agent"]) for r in rows} == {(g, a) for g in ("100k", "40M")
                                                          for a in ("DER", "DrQ_eps")}
    by_key = {(r["regime"], r["hyperparameter"], r["agent"]): r for r in rows}
    assert np.isclose(by_key["40M", "target_update_periods", "DER"]["thc"], 0.25)
    assert by_key["40M", "normalizations", "DER"]["thc"] is None  # BatchNorm has 25 games, not 26
    assert main(["analyze", "thc", str(DATA)]) == 0
    out = capsys.readouterr().out
    assert "target_update_periods" in out and "0.250" in out
