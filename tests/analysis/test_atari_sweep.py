"""Atari sweeps: shipped sweep files expand to validated configs (grouped fields merge into their
section), and `plastix analyze` turns finished runs over games into human-normalised aggregates."""

import json

import numpy as np

from plastix.analysis.report import analyze_sweep
from plastix.analysis.stats import iqm
from plastix.envs.atari_scores import human_normalized
from plastix.run.sweep import Index, build_config, load_sweep, points, run_hash


def test_shipped_scaling_sweep_sets_grouped_fields_together():
    sweep = load_sweep("atari_scaling")
    runs = points(sweep)
    assert len(runs) == 26 * 3 * 6
    pick = next(p for p in runs if p["net"].get("moe", {}).get("expert_scale") == 4.0
                and p["net"]["bottleneck"] == "perfeat" and p["net.encoder.scale"] == 2)
    config = build_config(sweep, pick)
    assert (config.net.bottleneck, config.net.moe.kind, config.net.moe.experts) == ("perfeat", "soft", 1)
    assert config.net.moe.expert_scale == 4.0 and config.net.encoder.kind == "impala"
    assert config.net.encoder.scale == 2 and config.net.hidden == (512,)  # the base recipe's, kept
    assert config.atari.sticky == 0.0 and config.total_steps == 100_000
    assert {p["env"] for p in runs} == {p["env"] for p in points(load_sweep("atari100k"))}


def test_sweep_over_games_gets_a_human_normalised_table(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    games, lrs = ["ALE/Pong-v5", "ALE/Breakout-v5", "ALE/Boxing-v5"], [1e-4, 3e-4]
    rng = np.random.default_rng(0)
    expected = {}
    for lr in lrs:
        cols = []
        for game in games:
            overrides = {"env": game, "dqn.lr": lr}
            run_dir = tmp_path / "runs" / run_hash(overrides)
            run_dir.mkdir(parents=True)
            returns = rng.uniform(0, 20, 3).tolist()
            hns = [float(human_normalized(r, game)) for r in returns]
            cols.append(hns)
            (run_dir / "summary.json").write_text(json.dumps({
                "env": game, "eval_return": returns, "eval_success": [0.0] * 3, "human_normalized": hns}))
            row = {"episode_return": returns, "episode_return_mean": float(np.mean(returns))}
            (run_dir / "metrics.jsonl").write_text("".join(
                json.dumps({"step": s, **row}) + "\n" for s in (100, 200)))
            index.add(run_hash(overrides), overrides, run_dir)
            index.mark(run_hash(overrides), "done")
        expected[lr] = iqm(np.array(cols).T)
    text = analyze_sweep(tmp_path, reps=200).read_text()
    assert "Human-normalised scores over 3 game(s)" in text and (tmp_path / "analysis" / "hns.png").is_file()
    for lr in lrs:
        row = next(line for line in text.splitlines() if line.startswith(f"| lr={lr} |"))
        assert f"{expected[lr]:.3f}" == row.split("|")[2].split()[0]
