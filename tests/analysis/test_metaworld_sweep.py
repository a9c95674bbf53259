"""Meta-World sweeps: the shipped scaling and task-count sweep files expand to validated configs, and
`plastix analyze` turns finished multi-task runs into success against actor / critic parameter counts
with each run's last dormant / GraMa ratios."""

import json

import numpy as np
import pytest

from plastix.analysis.report import analyze_sweep
from plastix.run.sweep import Index, build_config, load_sweep, points, run_hash

pytest.importorskip("metaworld")


def test_shipped_meta_world_sweeps_expand_to_valid_configs():
    runs = points(load_sweep("mtsac_scaling"))
    assert len(runs) == 16
    config = build_config(load_sweep("mtsac_scaling"), runs[1])
    assert config.sac.actor.hidden == (256,) * 3 and config.sac.critic.hidden == (512,) * 3
    assert config.env == "Meta-World/MT10" and config.sac.batch_size == 1280
    sweep = load_sweep("mtsac_task_count")
    configs = [build_config(sweep, p) for p in points(sweep)]
    assert [(c.env, c.sac.num_envs, c.sac.batch_size) for c in configs] == [
        ("Meta-World/MT1", 1, 128), ("Meta-World/MT10", 10, 1280), ("Meta-World/MT50", 50, 6400)]
    assert configs[0].metaworld.tasks == ("reach-v3",)
    # the same number of gradient steps in each: total_steps x utd
    assert len({round(c.total_steps * c.sac.utd) for c in configs}) == 1


def test_sweep_over_widths_gets_success_against_parameters(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    rng = np.random.default_rng(0)
    expected = []
    for actor in (256, 1024):
        for critic in (256, 1024):
            overrides = {"sac.actor.hidden": [actor] * 3, "sac.critic.hidden": [critic] * 3}
            run_dir = tmp_path / "runs" / run_hash(overrides)
            run_dir.mkdir(parents=True)
            success = rng.uniform(0, 1, 2).tolist()
            params = {"actor": 3 * actor**2, "critic": 6 * critic**2}
            (run_dir / "summary.json").write_text(json.dumps({
                "env": "Meta-World/MT10", "eval_return": [1.0, 2.0], "eval_success": success,
                "parameters": params}))
            rows = [{"step": 100, "episode_return": [1.0, 2.0], "episode_return_mean": 1.5,
                     "activity/critic/dormant": 0.3},
                    {"step": 200, "episode_return": [1.0, 2.0], "episode_return_mean": 1.5,
                     "activity/critic/dormant": 0.01 * actor / critic}]
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            index.add(run_hash(overrides), overrides, run_dir)
            index.mark(run_hash(overrides), "done")
            expected.append(f"| Meta-World/MT10 | {params['actor']:,} | {params['critic']:,} | "
                            f"{np.mean(success):.3f} +- {np.std(success):.3f} | "
                            f"{0.01 * actor / critic:.4f} |")
    text = analyze_sweep(tmp_path, reps=100).read_text()
    assert (tmp_path / "analysis" / "scaling.png").stat().st_size > 0
    assert "critic/dormant" in text and all(line in text for line in expected)
