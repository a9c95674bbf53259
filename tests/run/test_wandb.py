"""Optional Weights & Biases logging: what a run hands W&B, the same W&B run after a resume, bad input."""

import importlib.machinery
import json
import sys
import types

import numpy as np
import pytest

from plastix.cli import train_command
from plastix.run.config import ConfigError, from_dict, validate
from plastix.run.logging import WandbOptions, WandbRun

# the run also trains through the optimistic reset (the one training run of tests/envs/test_optimistic_reset)
ARGS = ["--env", "MiniGrid-Empty-5x5-v0", "--total-steps", "4096", "--seeds", "1", "--log-every", "2048",
        "--eval-episodes", "2", "--no-progress", "--reset-ratio", "4"]


class FakeWandb(types.ModuleType):
    """Records what plastix calls; stands in for the wandb package (no network, no service process)."""

    def __init__(self):
        super().__init__("wandb")
        self.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
        self.inits, self.logs, self.metrics, self.finished = [], [], [], 0

    def init(self, **kwargs):
        self.inits.append(kwargs)
        fake = self

        class Run:
            def define_metric(self, name, step_metric=None):
                fake.metrics.append((name, step_metric))

            def log(self, data):
                fake.logs.append(data)

            def finish(self):
                fake.finished += 1

        return Run()


def test_a_run_logs_to_wandb(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    args = ARGS + ["--out-dir", str(tmp_path), "--name", "r", "--wandb.project", "plasticity",
                   "--wandb.mode", "offline", "--wandb.tags", "a", "b"]
    assert train_command(args) == 0
    (init,) = fake.inits
    assert init["project"] == "plasticity" and init["mode"] == "offline" and init["name"] == "r"
    assert init["tags"] == ["a", "b"] and init["resume"] == "allow" and init["dir"] == str(tmp_path / "r")
    assert init["config"]["env"] == "MiniGrid-Empty-5x5-v0" and init["config"]["run_dir"].endswith("/r")
    assert init["config"]["reset_ratio"] == 4
    assert ("*", "env_step") in fake.metrics and fake.finished == 1
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [d["env_step"] for d in fake.logs] == [r["step"] for r in rows]
    assert fake.logs[-1]["episode_return/seed_0"] == rows[-1]["episode_return"][0]
    assert "chunk" not in fake.logs[-1] and "steps_per_s" in fake.logs[-1]
    assert rows[-1]["episodes"][0] > 0 and all(np.isfinite(r["episode_return"][0]) for r in rows)


def test_the_run_directory_keeps_its_wandb_run(tmp_path, monkeypatch):
    """A resumed run (a new `WandbRun` on the same directory) continues the same W&B run."""
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    options = WandbOptions(project="p", mode="offline")
    WandbRun(options, tmp_path, {}).close()
    WandbRun(options, tmp_path, {}).close()
    first, second = fake.inits
    assert first["id"] == second["id"] == (tmp_path / "wandb_id").read_text() and fake.finished == 2


def test_bad_wandb_settings_fail_before_training(monkeypatch):
    with pytest.raises(ConfigError, match="wandb.mode: 'sometimes' is not one of online, offline, disabled"):
        validate(from_dict({"wandb": {"project": "p", "mode": "sometimes"}}))
    with pytest.raises(ConfigError, match="wandb.project: the other --wandb.. options need a project"):
        validate(from_dict({"wandb": {"group": "sweep"}}))
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"wandb.project: W&B logging needs the wandb package: pip install "
                                          r"'plastix\[wandb\]'"):
        validate(from_dict({"wandb": {"project": "p"}}))
