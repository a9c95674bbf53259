"""DQN through the run machinery: exact budgets, evaluations beside training returns, ReDo on the
online network with the target following, and SIGKILL + resume equal to an uninterrupted run with the
replay buffer restored."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from plastix.cli import evaluate_command, train_command
from plastix.run.config import from_dict, load_yaml
from plastix.run.load import evaluate, load
from plastix.run.train import resume, train

SMALL = ["--agent", "dqn", "--env", "MiniGrid-Empty-5x5-v0", "--seeds", "2", "--eval-episodes", "4",
         "--no-progress", "--dqn.num-envs", "4", "--dqn.buffer-size", "2000", "--dqn.min-replay", "200",
         "--dqn.batch-size", "32", "--dqn.update-period", "2", "--dqn.target-update-period", "20",
         "--dqn.n-step", "3", "--net.hidden", "32"]


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]


def test_budget_is_exact_and_evaluations_are_logged(tmp_path):
    # 4,001 steps with 4 envs: 1,001 iterations (4,004 steps), chunks of 256 iterations and a short last one
    args = SMALL + ["--total-steps", "4001", "--log-every", "1024", "--eval-every", "2048",
                    "--out-dir", str(tmp_path), "--name", "d"]
    assert train_command(args) == 0
    rows = _rows(tmp_path / "d")
    assert [r["step"] for r in rows] == [1024, 2048, 3072, 4004]
    assert [("eval_return" in r) for r in rows] == [False, True, False, True]
    assert all(len(r["eval_success"]) == 2 for r in rows if "eval_success" in r)
    # updates every 2 iterations once 200 transitions (50 iterations) are stored
    assert [r["updates"] for r in rows] == [104, 128, 128, 116]
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["steps_per_seed"] == 4004
    out = evaluate(tmp_path / "d", episodes=3)
    assert out["step"] == 4004 and out["episodes"] == 3 and len(out["eval_return"]) == 2
    assert evaluate_command([str(tmp_path / "d"), "--episodes", "2"]) == 0


def test_redo_resets_online_network_and_target_follows(tmp_path):
    args = SMALL + ["--total-steps", "2048", "--log-every", "1024", "--out-dir", str(tmp_path), "--name", "r",
                    "--dqn.target-update-period", "100000", "--net.activation", "relu",
                    "--plasticity.metrics", "dormant,grama", "--plasticity.every", "5",
                    "--plasticity.reset", "redo", "--plasticity.reset-every", "50", "--plasticity.tau", "0.5"]
    assert train_command(args) == 0
    rows = _rows(tmp_path / "r")
    for row in rows:
        assert 0 <= row["activity/dormant"] <= 1 and 0 <= row["activity/grama"] <= 1
        assert row["activity/reset_fraction"] > 0  # tau 0.5 always finds neurons to reset
    # the target was never copied (period beyond the run), so only resets could have changed it:
    # a reset neuron's outgoing weights are zero in both networks
    state = load(tmp_path / "r").runner.agent
    online, target = state.params["head"]["dense"]["kernel"], state.target_params["head"]["dense"]["kernel"]
    zero_rows = np.all(np.asarray(online) == 0, axis=-1)  # hidden units whose outgoing weights are zero
    assert zero_rows.any()
    assert np.all(np.asarray(target)[zero_rows] == 0)


def _latest(run_dir):
    try:
        steps = [int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()]
        return max(steps, default=None)
    except FileNotFoundError:
        return None


def test_sigkill_then_resume_equals_uninterrupted_with_replay(tmp_path):
    args = SMALL + ["--total-steps", "8192", "--log-every", "512"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "plastix.cli", "train", *args, "--out-dir", str(tmp_path),
                             "--name", "killed"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (_latest(killed) or 0) < 4:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before SIGKILL"
    assert 4 <= _latest(killed) < 16
    resumed = resume(killed)
    config = load_yaml(killed / "config.yaml")
    reference = train(config.__class__(**{**config.__dict__, "name": "uninterrupted"}))
    a, b = load(killed).runner.agent, load(reference.run_dir).runner.agent
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), a, b)  # replay included
    assert int(jnp.asarray(a.replay.size)[0]) > 0
    assert resumed.eval_return == reference.eval_return
    assert len(_rows(killed)) == 16


@pytest.mark.slow  # every component at once; der_minigrid (slow) trains the same set to a solution
def test_dqn_runs_from_a_dict_config(tmp_path):
    cfg = from_dict({"agent": "dqn", "env": "MiniGrid-Empty-5x5-v0", "total_steps": 600, "seeds": 1,
                     "log_every": 300, "eval_episodes": 2, "out_dir": str(tmp_path), "progress": False,
                     "dqn": {"num_envs": 2, "buffer_size": 500, "min_replay": 100, "batch_size": 8,
                             "prioritized": True, "distributional": True, "dueling": True, "noisy": True,
                             "double": True, "n_step": 3, "atoms": 11}})
    result = train(cfg)
    assert result.steps == 600 and np.isfinite(result.eval_return).all()
    rows = _rows(result.run_dir)
    assert all(np.isfinite(r["loss/total"]) for r in rows)


def test_metrics_log_skips_seeds_without_episodes(tmp_path):
    from plastix.run.logging import MetricsLog, read_metrics

    log = MetricsLog(tmp_path)
    log.write({"chunk": 0, "step": 10, "episode_return": [0.5, None, 1.0], "loss/total": 0.1})
    log.close()
    assert read_metrics(tmp_path)[0]["episode_return"] == [0.5, None, 1.0]
