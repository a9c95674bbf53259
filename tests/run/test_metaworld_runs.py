"""Meta-World runs end to end: a 2k-step smoke of mtsac_mt10 logs Meta-World's own evaluation with a
success rate per task (10 names), and its checkpoint restores every env on the same task; the
meta-RL protocol (ML1, held-out test tasks) evaluates a SAC run zero-shot."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("metaworld")

from plastix.run.config import from_dict, load_recipe, to_dict  # noqa: E402
from plastix.run.load import load  # noqa: E402
from plastix.run.train import train  # noqa: E402

# the MT10 tasks as Meta-World publishes them (Yu et al. 2019, v3 names), in its order
MT10 = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
        "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3"]


def _short(recipe, tmp_path, steps, warmup, **extra):
    data = to_dict(load_recipe(recipe))
    data.update({"total_steps": steps, "seeds": 1, "log_every": steps // 2, "eval_every": 0,
                 "eval_episodes": 1, "out_dir": str(tmp_path), "name": recipe, "progress": False, **extra})
    data["sac"].update(learning_starts=warmup, buffer_size=steps)
    return from_dict(data)


def test_mtsac_mt10_smoke_logs_success_per_task_and_resumes_on_the_same_tasks(tmp_path):
    config = _short("mtsac_mt10", tmp_path, 1400, 1200)  # 20 updates at the recipe's batch of 1280
    result = train(config)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    names = MT10
    assert sorted(k for k in summary["eval_per_task"] if k.startswith("success/")) == \
        sorted(f"success/{n}" for n in names)
    rates = [summary["eval_per_task"][f"success/{n}"][0] for n in names]
    assert all(r in (0.0, 1.0) for r in rates)  # one episode per task
    np.testing.assert_allclose(summary["eval_success"], [np.mean(rates)])
    assert summary["parameters"]["critic"] > summary["parameters"]["actor"] > 400 * 400 * 2
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["updates"] > 0 and np.isfinite(rows[-1]["loss/critic"])
    # training returns per task, as the device loop logs a task mix's (None: no episode ended yet)
    assert sorted(k for k in rows[-1] if k.startswith("episode_return/")) == \
        sorted(f"episode_return/{n}" for n in names)

    # restored from its first checkpoint in a new loop: every env keeps its task (and its one-hot)
    shutil.rmtree(result.run_dir / "checkpoints" / "2")
    run = load(result.run_dir)
    try:
        assert run.chunk == 1
        saved = np.asarray(run.runner.obs)[..., 39:].argmax(-1)
        np.testing.assert_array_equal(saved, [np.arange(10)])
        fresh = run.loop._sync(run.runner, 1)
        np.testing.assert_array_equal(np.asarray(fresh.obs)[..., 39:].argmax(-1), saved)
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS
        by_class = {cls.__name__: name for name, cls in ALL_V3_ENVIRONMENTS.items()}
        group = run.loop._train().groups[0]
        assert [by_class[c] for c in group.get_attr("task_name")] == names
    finally:
        run.loop.close()


@pytest.mark.slow
def test_meta_rl_protocol_evaluates_on_held_out_tasks(tmp_path):
    config = _short("sac_mujoco", tmp_path, 600, 300, env="Meta-World/ML1",
                    metaworld={"tasks": ["reach-v3"], "meta_evals": 1}, plasticity={})
    result = train(config)
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert sorted(summary["eval_per_task"]) == ["return/all", "success/reach-v3"]
    assert 0.0 <= summary["eval_success"][0] <= 1.0 and np.isfinite(summary["eval_return"]).all()
