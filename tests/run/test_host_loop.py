"""The host-stepped loop: SAC learns a numpy env whose optimal return is known; a SIGKILLed MuJoCo run
resumes to the parameters of an uninterrupted one; an env that raises ends the run naming env and step."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from plastix.envs.api import Box, EnvSpec, list_envs, register
from plastix.run.config import from_dict, load_yaml
from plastix.run.host_loop import HostEnvError
from plastix.run.load import final_params
from plastix.run.train import resume, train

HORIZON = 5


class TargetVec:
    """Each episode draws a target in [-0.8, 0.8], shown as the observation; reward -|a - target| per
    step for 5 steps, so the optimal return is 0 and a uniformly random policy's about -3.0."""

    def __init__(self, spec, n, fail_at=None):
        self.spec, self.num_envs, self.fail_at = spec, n, fail_at
        self.t = np.zeros(n, np.int64)
        self.target = np.zeros(n)
        self.rng = np.random.default_rng(0)
        self.steps = 0

    def _draw(self, i):
        self.target[i] = self.rng.uniform(-0.8, 0.8)
        self.t[i] = 0

    def reset(self, seed):
        self.rng = np.random.default_rng(int(np.asarray(seed).ravel()[0]))
        for i in range(self.num_envs):
            self._draw(i)
        return self.target[:, None].astype(np.float32)

    def step(self, actions):
        self.steps += 1
        if self.fail_at is not None and self.steps >= self.fail_at:
            raise FloatingPointError("simulated instability")
        reward = -np.abs(actions[:, 0] - self.target).astype(np.float32)
        self.t += 1
        truncated = self.t >= HORIZON
        final = self.target[:, None].astype(np.float32).copy()
        for i in np.flatnonzero(truncated):
            self._draw(i)
        return (self.target[:, None].astype(np.float32), reward, np.zeros(self.num_envs, bool), truncated,
                {"final_obs": final})

    def snapshot(self):
        state = self.rng.bit_generator.state["state"]
        words = np.array([state["state"] >> 64, state["state"] & (2**64 - 1), state["inc"] >> 64,
                          state["inc"] & (2**64 - 1)], np.uint64)
        # snapshot entries lead with the env axis; the one generator's state is repeated per env
        return {"t": self.t.copy(), "target": self.target.copy(), "rng": np.tile(words, (self.num_envs, 1))}

    def restore(self, snap):
        self.t, self.target = np.array(snap["t"]), np.array(snap["target"])
        r = [int(x) for x in np.asarray(snap["rng"], np.uint64)[0]]
        full = self.rng.bit_generator.state
        full["state"] = {"state": (r[0] << 64) | r[1], "inc": (r[2] << 64) | r[3]}
        self.rng.bit_generator.state = full

    def close(self):
        pass


class TargetEnv:
    fail_at = None

    def __init__(self, env_id):
        self.env_id = env_id
        self.spec = EnvSpec(env_id, Box(-1.0, 1.0, (1,)), Box(-1.0, 1.0, (1,)), HORIZON, False)

    def vector(self, n):
        return TargetVec(self.spec, n, self.fail_at)


class FailingEnv(TargetEnv):
    fail_at = 300


for _id, _cls in (("test/target-v0", TargetEnv), ("test/failing-v0", FailingEnv)):
    if _id not in list_envs("test/"):
        register(_id, _cls)


def _config(tmp_path, name, env="test/target-v0", steps=3000):
    return from_dict({"env": env, "agent": "sac", "total_steps": steps, "seeds": 2, "log_every": 500,
                      "eval_episodes": 8, "out_dir": str(tmp_path), "name": name, "progress": False,
                      "sac": {"num_envs": 2, "learning_starts": 500, "batch_size": 64,
                              "actor": {"hidden": [32, 32], "activation": "relu"},
                              "critic": {"hidden": [32, 32], "activation": "relu"}}})


def test_sac_on_the_host_loop_reaches_the_known_optimum(tmp_path):
    result = train(_config(tmp_path, "target"))
    # optimum 0, uniformly random about -3.0: the deterministic policy tracks the target within ~0.1
    assert min(result.eval_return) > -0.6, result.eval_return
    rows = [line for line in (result.run_dir / "metrics.jsonl").read_text().splitlines() if line]
    assert len(rows) == 6  # 3,000 steps per seed in log lines of 500


def test_host_env_error_names_env_and_step_and_keeps_the_checkpoint(tmp_path):
    with pytest.raises(HostEnvError, match=r"env test/failing-v0 raised at env step 600 per seed: "
                                           r"FloatingPointError: simulated instability; stopped: the last "
                                           r"good state \(step 500\) is checkpoint 1"):
        train(_config(tmp_path, "failing", env="test/failing-v0"))
    assert (tmp_path / "failing" / "checkpoints" / "1").is_dir()


def _latest(run_dir):
    try:
        return max((int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit()),
                   default=None)
    except FileNotFoundError:
        return None


HOPPER = ["--recipe", "sac_mujoco", "--total-steps", "800", "--seeds", "2", "--log-every", "200",
          "--eval-episodes", "2", "--sac.learning-starts", "200", "--sac.batch-size", "32",
          "--sac.actor.hidden", "16", "16", "--sac.critic.hidden", "16", "16", "--no-progress"]


@pytest.mark.slow  # 100 s; the default run kills and resumes the device loop with a replay (test_dqn_run)
def test_sac_sigkill_then_resume_equals_uninterrupted(tmp_path):
    """Replay and MuJoCo's integration state are in the checkpoint, so the resumed run is exact."""
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "plastix.cli", "train", *HOPPER, "--out-dir",
                             str(tmp_path), "--name", "killed"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (_latest(killed) or 0) < 2:
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before SIGKILL"
    assert 2 <= _latest(killed) < 4

    result = resume(killed)
    config = load_yaml(killed / "config.yaml")
    reference = train(config.__class__(**{**config.__dict__, "name": "uninterrupted"}))
    a, b = final_params(killed), final_params(reference.run_dir)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(x, y), a, b)
    assert result.eval_return == reference.eval_return


@pytest.mark.parametrize("recipe", [
    "regrama_sac_mujoco",  # the default run covers the hook on actor and critics; the others are slow
    pytest.param("sac_mujoco", marks=pytest.mark.slow),
    pytest.param("redo_sac_mujoco", marks=pytest.mark.slow),
    pytest.param("regrama_bro_mujoco", marks=pytest.mark.slow)])
def test_sac_recipes_run_and_log_activity_per_network(tmp_path, recipe):
    from plastix.run.config import load_recipe

    config = load_recipe(recipe)
    config = config.__class__(**{
        **config.__dict__, "env": "dmc/cartpole-swingup" if recipe == "redo_sac_mujoco" else config.env,
        "total_steps": 600, "seeds": 2, "log_every": 300, "eval_every": 0, "eval_episodes": 1,
        "out_dir": str(tmp_path), "name": recipe, "progress": False,
        "sac": config.sac.__class__(**{**config.sac.__dict__, "learning_starts": 300, "batch_size": 32}),
        "plasticity": config.plasticity.__class__(**{**config.plasticity.__dict__, "every": 50,
                                                     "reset_every": 100})})
    result = train(config)
    assert np.isfinite(result.eval_return).all()
    last = (tmp_path / recipe / "metrics.jsonl").read_text().splitlines()[-1]
    if config.plasticity.metric_names:
        for key in ('"activity/actor/grama"', '"activity/critic/dormant"', '"activity/reset_fraction"'):
            assert key in last


@pytest.mark.slow
def test_measuring_activity_changes_no_result(tmp_path):
    """The sac_mujoco baseline logs dormant / GraMa ratios; that must not change its training."""
    base = _config(tmp_path, "plain", steps=600)
    measured = base.__class__(**{**base.__dict__, "name": "measured", "plasticity": base.plasticity.__class__(
        metrics="dormant,grama", every=5)})
    a, b = train(base), train(measured)
    jax.tree.map(np.testing.assert_array_equal, final_params(a.run_dir), final_params(b.run_dir))
    assert "activity/critic/grama" in (b.run_dir / "metrics.jsonl").read_text()


def test_continuous_ppo_on_the_host_loop_learns_the_target(tmp_path):
    """PPO's Gaussian policy through the host loop (CALE's and MuJoCo's path for PPO), measuring its
    dormant ratio inside the update every other iteration."""
    config = from_dict({"env": "test/target-v0", "agent": "ppo", "total_steps": 20_480, "seeds": 2,
                        "log_every": 4096, "eval_episodes": 8, "out_dir": str(tmp_path), "name": "ppo",
                        "progress": False,
                        "ppo": {"num_envs": 8, "num_steps": 64, "update_epochs": 4, "num_minibatches": 4,
                                "lr": 0.001, "ent_coef": 0.0, "eval_greedy": True},
                        "net": {"hidden": [32, 32]}, "plasticity": {"metrics": "dormant", "every": 2}})
    result = train(config)
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(0 <= row["activity/dormant"] <= 1 for row in rows)
    # uniformly random is about -3.0, a unit Gaussian at 0 about -4; the mean tracks the target
    assert min(result.eval_return) > -0.6, result.eval_return
