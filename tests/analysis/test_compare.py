"""`plastix analyze RUN RUN`: runs side by side, with per-network activity ratios."""

import json

import pytest

from plastix.analysis.report import compare
from plastix.cli import main


def _run(path, ratio):
    path.mkdir()
    rows = [{"chunk": i, "step": 1000 * (i + 1), "episode_return": [1.0 * i, 2.0 * i],
             "eval_return": [10.0 * i, 20.0 * i], "activity/actor/grama": ratio * i,
             "activity/critic/dormant": ratio / 2, "activity/reset_fraction": 0.01} for i in range(3)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_compare_tables_the_last_evaluation_and_ratios(tmp_path):
    a, b = _run(tmp_path / "regrama", 0.1), _run(tmp_path / "baseline", 0.3)
    md = compare([a, b], tmp_path / "out").read_text()
    header = "| run | step | eval return (mean over seeds) | activity/actor/grama | activity/critic/dormant |"
    assert header in md
    assert "| regrama | 3,000 | 30.0 | 0.2000 | 0.0500 |" in md
    assert "| baseline | 3,000 | 30.0 | 0.6000 | 0.1500 |" in md
    assert (tmp_path / "out" / "compare.png").is_file()


def test_compare_refuses_a_directory_that_is_not_a_run(tmp_path, capsys):
    _run(tmp_path / "a", 0.1)
    (tmp_path / "b").mkdir()
    assert main(["analyze", str(tmp_path / "a"), str(tmp_path / "b")]) == 2
    assert "has no metrics.jsonl" in capsys.readouterr().err
    with pytest.raises(ValueError, match="run_dir"):
        compare([tmp_path / "b", tmp_path / "a"])
