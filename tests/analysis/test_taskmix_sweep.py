"""The MoE-in-actor-critic sweep: the shipped sweep file expands to valid configs in both regimes, and
`plastix analyze` turns task-mix runs into per-task returns and per-network activity, by regime."""

import json

import numpy as np

from plastix.analysis.report import analyze_sweep
from plastix.run.config import validate
from plastix.run.sweep import Index, build_config, load_sweep, points, run_hash

TASKS = ("MiniGrid-DoorKey-5x5-v0", "MiniGrid-LavaGapS5-v0", "MiniGrid-Empty-6x6-v0")


def test_shipped_moe_sweep_covers_placements_routers_and_regimes():
    sweep = load_sweep("moe_taskmix")
    configs = [build_config(sweep, p) for p in points(sweep)]
    assert len(configs) == 28  # (12 mixtures + single network + one-expert control) x 2 regimes
    for c in configs:
        validate(c)
    kinds = {(c.net.moe.kind, c.net.moe.position) for c in configs if c.net.moe.kind != "none"}
    assert kinds == {(k, p) for k in ("soft", "topk", "task") for p in ("middle", "final", "all", "big")}
    assert {c.taskmix.switch_every for c in configs} == {0, 25_000}
    assert all(c.taskmix.tasks == TASKS for c in configs)


def _write_run(tmp_path, index, overrides, task_returns, actor_dormant):
    run_dir = tmp_path / "runs" / run_hash(overrides)
    run_dir.mkdir(parents=True)
    summary = {"env": "TaskMix/MiniGrid-v0", "eval_return": [0.5, 0.5]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    rows = []
    for i, returns in enumerate(task_returns):  # returns: [tasks][seeds], None where no episode ended
        row = {"step": 1000 * (i + 1), "episode_return": [0.5, 0.5]}
        row |= {f"episode_return/{t}": r for t, r in zip(TASKS, returns, strict=True)}
        row |= {"activity/dormant/actor_torso/torso/dense_0": actor_dormant[i],
                "activity/dormant/actor_torso/torso/dense_1": 0.0,
                "activity/dormant/critic_torso/torso/dense_0": 0.2,
                "activity/grama/actor_torso/torso/dense_0": 0.1,
                "activity/grama/critic_torso/torso/dense_0": 0.3}
        rows.append(row)
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    index.add(run_hash(overrides), overrides, run_dir)
    index.mark(run_hash(overrides), "done")


def test_taskmix_sweep_gets_per_task_returns_and_activity_per_network(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    # four rows, two seeds; the continual run sees LavaGap only in its second half
    multi = [[[0.0, 0.2], [0.4, 0.6], [1.0, 0.8]]] * 4
    continual = [[[0.2, 0.2], [None, None], [1.0, 1.0]]] * 2 + [[[0.4, 0.4], [0.6, 0.6], [None, None]]] * 2
    _write_run(tmp_path, index, {"net.moe": {"kind": "none"}, "taskmix.switch_every": 0}, multi,
               [0.4, 0.4, 0.4, 0.2])
    _write_run(tmp_path, index, {"net.moe": {"kind": "soft", "experts": 3, "position": "big"},
                                 "taskmix.switch_every": 500}, continual, [0.0, 0.0, 0.0, 0.6])
    text = analyze_sweep(tmp_path, reps=200).read_text()
    assert (tmp_path / "analysis" / "taskmix.png").stat().st_size > 0
    # tasks in name order: DoorKey, Empty, LavaGap; per seed the mean over tasks, then over seeds
    seeds = [np.mean([0.0, 1.0, 0.4]), np.mean([0.2, 0.8, 0.6])]
    assert (f"| multi-task | moe=(kind=none) | 2 | {np.mean(seeds):.3f} [{seeds[0]:.3f}, {seeds[1]:.3f}] | "
            f"0.100 | 0.900 | 0.500 "
            f"| 0.100 | 0.200 | 0.100 | 0.300 |") in text
    # continual: each task's mean over the rows that saw it; last quarter = the last row
    cont_mean = np.mean([0.3, 1.0, 0.6])
    assert (f"| continual (task switch every 500 steps) | moe=(kind=soft experts=3 position=big) | 2 | "
            f"{cont_mean:.3f} [{cont_mean:.3f}, {cont_mean:.3f}] | 0.300 | 1.000 | 0.600 | 0.300 | 0.200 |"
            ) in text
