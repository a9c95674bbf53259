"""Activity diagnostics and resets inside the jitted PPO loop, from the command line."""

import json

import numpy as np

from plastix.cli import train_command


def test_activity_metrics_and_regrama_resets_in_a_run(tmp_path):
    args = ["--env", "MiniGrid-Empty-5x5-v0", "--total-steps", "32768", "--seeds", "2", "--log-every",
            "8192", "--eval-episodes", "4", "--no-progress", "--out-dir", str(tmp_path), "--name", "r",
            "--ppo.num-steps", "64", "--net.torso", "residual", "--net.activation", "leaky_relu",
            "--net.hidden", "16", "16", "--plasticity.metrics", "dormant,grama,srank",
            "--plasticity.every", "2", "--plasticity.reset", "regrama", "--plasticity.reset-every", "4",
            "--plasticity.tau", "0.1"]
    assert train_command(args) == 0
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    for row in rows:
        for key in ("activity/dormant", "activity/grama", "activity/reset_fraction",
                    "activity/srank/actor_torso/torso/block_0/dense_0",
                    "activity/grama/critic_torso/torso/block_1/dense_0"):
            assert np.isfinite(row[key]) and row[key] >= 0, key
        assert 0 <= row["activity/dormant"] <= 1 and 0 <= row["activity/reset_fraction"] <= 1
    assert any(row["activity/reset_fraction"] > 0 for row in rows), "ReGraMa never reset a neuron"
    assert (tmp_path / "r" / "plots" / "activity.png").stat().st_size > 0
