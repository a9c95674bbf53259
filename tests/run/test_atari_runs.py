"""Atari recipes end to end on Breakout: 2k-step smokes of dqn_atari and cale_sac (summary with
human-normalised scores; a run restored from a checkpoint continues on freshly reset games), 10k-step
runs of every Atari recipe in the slow suite."""

import json
import shutil

import numpy as np
import pytest

from plastix.envs.atari_scores import human_normalized
from plastix.run.config import from_dict, load_recipe, to_dict
from plastix.run.train import resume, train


def _short(recipe, tmp_path, steps, warmup, seeds=2, **extra):
    data = to_dict(load_recipe(recipe))
    section = data["agent"]
    data.update({"total_steps": steps, "seeds": seeds, "log_every": steps // 2, "eval_every": 0,
                 "eval_episodes": 2, "eval_max_steps": 300, "out_dir": str(tmp_path), "name": recipe,
                 "progress": False, **extra})
    if section == "dqn":
        data["dqn"].update(min_replay=warmup, buffer_size=steps)
    elif section == "sac":
        data["sac"].update(learning_starts=warmup, buffer_size=steps)
    return from_dict(data)


@pytest.mark.parametrize("recipe", ["dqn_atari", pytest.param("cale_sac", marks=pytest.mark.slow)])
def test_atari_smoke_and_resume_on_fresh_games(tmp_path, recipe):
    """2k agent steps, the last 100 learning (25 updates on CPU take most of the time)."""
    config = _short(recipe, tmp_path, 2000, 1900, seeds=1)
    result = train(config)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["env"].endswith("Breakout-v5") and len(summary["eval_return"]) == 1
    np.testing.assert_allclose(summary["human_normalized"],
                               [human_normalized(r, "Breakout") for r in summary["eval_return"]])
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["updates"] > 0 and np.isfinite(rows[-1]["loss/critic" if recipe == "cale_sac"
                                                            else "loss/td"]).all()
    assert all(n > 0 for n in rows[0]["episodes"])  # random Breakout games end within 1,000 steps

    if recipe != "dqn_atari":
        return
    # ALE cannot save emulator states: drop the last checkpoint, resume on fresh games from the first
    shutil.rmtree(result.run_dir / "checkpoints" / "2")
    (result.run_dir / "summary.json").unlink()
    again = resume(result.run_dir, say=lambda _: None)
    assert np.isfinite(again.eval_return).all() and (result.run_dir / "summary.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "env"), [
    ("dqn_atari", None), ("rainbow_atari", None), ("der_atari100k", None), ("drq_eps_atari100k", None),
    ("cale_sac", None), ("ppo_atari", None), ("ppo_atari", "CALE/Breakout-v5")])
def test_every_atari_recipe_runs_10k_steps(tmp_path, recipe, env):
    extra = {"env": env} if env else {}
    if recipe == "ppo_atari":
        extra["ppo"] = {**to_dict(load_recipe(recipe))["ppo"], "num_steps": 64}
    result = train(_short(recipe, tmp_path, 10_000, 9000, **extra))
    assert np.isfinite(result.eval_return).all()
