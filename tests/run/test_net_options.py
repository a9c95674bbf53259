"""Network options from the command line: a SoftMoE actor-critic and decoupled CNN encoders train end to
end with PPO on a gridworld."""

import json

import numpy as np
import pytest

from plastix.cli import train_command
from plastix.run.config import load_yaml


def _train(tmp_path, name, *net_args):
    args = ["--env", "MiniGrid-Empty-5x5-v0", "--total-steps", "65536", "--seeds", "2", "--log-every",
            "16384", "--eval-episodes", "8", "--no-progress", "--out-dir", str(tmp_path), "--name", name,
            *net_args]
    assert train_command(args) == 0
    run = tmp_path / name
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return run, rows


@pytest.mark.slow  # ~40 s; tests/test_readme.py checks the README's SoftMoE command line in the default run
def test_softmoe_actor_critic_from_cli(tmp_path):
    run, rows = _train(tmp_path, "soft", "--net.bottleneck", "perconv", "--net.hidden", "64",
                       "--net.moe.kind", "soft", "--net.moe.experts", "2", "--net.moe.placement", "both")
    config = load_yaml(run / "config.yaml")
    assert config.net.moe.kind == "soft" and config.net.bottleneck == "perconv"
    keys = set().union(*rows)
    assert {"moe/actor_torso/moe/entropy", "moe/critic_torso/moe/load_imbalance"} <= keys
    assert all(np.isfinite(r["loss/total"]) for r in rows if "loss/total" in r)
    summary = json.loads((run / "summary.json").read_text())
    assert np.mean(summary["eval_success"]) > 0.5  # Empty-5x5 is learnt in 64k steps


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["impala", "nature"])
def test_decoupled_cnn_encoders_from_cli(tmp_path, encoder):
    run, rows = _train(tmp_path, encoder, "--net.encoder.kind", encoder, "--net.shared", "none",
                       "--net.bottleneck", "gap", "--net.activation", "relu")
    assert load_yaml(run / "config.yaml").net.encoder.kind == encoder
    assert rows and all(np.isfinite(r["loss/total"]) for r in rows if "loss/total" in r)
