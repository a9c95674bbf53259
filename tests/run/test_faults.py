"""Runs that fail safe: a damaged checkpoint is reported and skipped, a resume says where it continues
and refuses options that would change the run, recipes load from YAML files with the same checks."""

import dataclasses

import jax
import numpy as np
import pytest
import yaml

from plastix.cli import train_command
from plastix.run.config import ConfigError, from_dict, load_recipe
from plastix.run.load import final_params
from plastix.run.train import resume, train


def _config(tmp_path, name):
    return from_dict({"env": "MiniGrid-Empty-5x5-v0", "total_steps": 4096, "seeds": 2, "log_every": 1024,
                      "eval_episodes": 2, "out_dir": str(tmp_path), "name": name, "progress": False,
                      "ppo": {"num_envs": 4, "num_steps": 64, "num_minibatches": 2}})


def test_truncated_latest_checkpoint_resumes_from_the_previous_one(tmp_path):
    result = train(_config(tmp_path, "run"))
    reference = final_params(result.run_dir)
    step_dir = result.run_dir / "checkpoints" / "4"
    victim = max((p for p in step_dir.rglob("*") if p.is_file() and p.name != "plastix_manifest.json"),
                 key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    said = []
    resume(result.run_dir, say=said.append)
    assert said[0].startswith(f"checkpoint 4 is unusable ({victim} has ") and "trying checkpoint 3" in said[0]
    assert "\n" not in said[0]
    assert said[1] == f"resuming {result.run_dir} from checkpoint 3: step 3,072 of 4,096 per seed"
    jax.tree.map(np.testing.assert_array_equal, final_params(result.run_dir), reference)
    rows = (result.run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 4


def test_resume_prints_its_step_and_refuses_result_changing_options(tmp_path, capsys):
    config = dataclasses.replace(_config(tmp_path, "r"), total_steps=2048)
    train(config)
    assert train_command(["--resume", str(tmp_path / "r"), "--seeds", "3"]) == 2
    out = capsys.readouterr().out
    assert "--seeds would change the run" in out and "--no-progress" in out
    assert train_command(["--resume", str(tmp_path / "r"), "--no-progress"]) == 0
    assert f"resuming {tmp_path / 'r'} from checkpoint 2: step 2,048 of 2,048 per seed" in " ".join(
        capsys.readouterr().out.split())


def test_recipe_from_a_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"env": "MiniGrid-Empty-6x6-v0", "ppo": {"lr": 1e-3}}))
    config = load_recipe(str(path))
    assert config.env == "MiniGrid-Empty-6x6-v0" and config.ppo.lr == 1e-3
    path.write_text(yaml.safe_dump({"ppo": {"lrr": 1e-3}}))
    with pytest.raises(ConfigError, match="ppo.lrr: unknown field"):
        load_recipe(str(path))
    with pytest.raises(ConfigError, match="recipe: no such file"):
        load_recipe(str(tmp_path / "missing.yaml"))
    assert train_command(["--recipe", str(path), "--no-progress"]) == 2


def test_a_background_save_counts_once_its_manifest_is_written(tmp_path):
    """`Checkpointer(background=True)` writes while training goes on; a checkpoint counts (for readers and
    for resuming) only after the next save, `latest` or `close` has waited for it and written its
    manifest, so a kill during the write leaves the previous checkpoint as the newest intact one."""
    import jax.numpy as jnp

    from plastix.run.checkpoint import MANIFEST, Checkpointer

    trees = [{"w": jnp.arange(4096.0) * i, "step": jnp.int32(i)} for i in range(3)]
    ckpt = Checkpointer(tmp_path / "ckpt", background=True)
    ckpt.save(1, trees[1])
    ckpt.save(2, trees[2])  # waits for checkpoint 1 and writes its manifest first
    assert (tmp_path / "ckpt" / "1" / MANIFEST).is_file()
    assert ckpt.latest() == 2 and ckpt.problem(2) is None
    ckpt.close()
    reader = Checkpointer(tmp_path / "ckpt", read_only=True)
    assert reader.latest() == 2
    jax.tree.map(np.testing.assert_array_equal, reader.restore(2, trees[0]), trees[2])
    reader.close()
