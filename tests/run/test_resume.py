"""A run killed with SIGKILL and resumed ends with the same parameters as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from plastix.run.config import from_dict, load_yaml
from plastix.run.load import final_params
from plastix.run.train import NonFiniteLossError, resume, train

ARGS = ["--env", "MiniGrid-DoorKey-5x5-v0", "--total-steps", "49152", "--seeds", "2",
        "--log-every", "4096", "--eval-episodes", "4", "--no-progress"]


def _latest(run_dir):
    """Newest finished checkpoint, read from the directory names (orbax renames a step's temporary
    directory to its number when the save is complete), so polling never races the writer."""
    try:
        steps = [int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()]
    except FileNotFoundError:
        return None
    return max(steps, default=None)


@pytest.mark.slow  # 92 s; the default run kills and resumes the device loop in test_dqn_run (with a replay)
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "plastix.cli", "train", *ARGS, "--out-dir", str(tmp_path),
         "--name", "killed"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline:
        if (_latest(killed) or 0) >= 3:
            break
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = _latest(killed)
    assert not (killed / "summary.json").exists(), "the run finished before SIGKILL"
    assert 3 <= at_kill < 12

    result = resume(killed)
    config = load_yaml(killed / "config.yaml")
    rows = [line for line in (killed / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 12  # no chunk logged twice

    reference = train(config.__class__(**{**config.__dict__, "name": "uninterrupted"}))
    a, b = final_params(killed), final_params(reference.run_dir)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), a, b)
    assert result.eval_success == reference.eval_success


def test_nan_loss_stops_with_checkpoint_and_step(tmp_path, monkeypatch):
    from plastix.agents import ppo

    real_loss = ppo.PPO.loss

    def poisoned(self, params, batch):
        loss, aux = real_loss(self, params, batch)
        bad = jax.numpy.where(params["actor_head"]["dense"]["bias"][0] != 0, jax.numpy.nan, 0.0)
        return loss + bad, {**aux, "loss/total": aux["loss/total"] + bad}

    monkeypatch.setattr(ppo.PPO, "loss", poisoned)
    config = from_dict({"env": "MiniGrid-Empty-5x5-v0", "total_steps": 8192, "seeds": 1,
                        "log_every": 2048, "out_dir": str(tmp_path), "name": "nan",
                        "progress": False, "ppo": {"num_envs": 4, "num_steps": 64,
                                                   "num_minibatches": 2}})
    # the head bias is 0 at init, so the first minibatch is finite and the second is NaN
    with pytest.raises(NonFiniteLossError, match=r"NaN/inf at iteration 1 \(env step 256"):
        train(config)
    assert _latest(tmp_path / "nan") == 0  # the last finite state (the initial one) is saved
