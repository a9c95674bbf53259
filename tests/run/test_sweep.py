"""Sweeps: points, the SQLite index, kill and re-launch (every run complete exactly once), analysis."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from plastix.run.sweep import Index, SweepConfig, launch, load_sweep, points, run_hash


def test_points_and_hashes():
    sweep = SweepConfig(grid={"ppo.lr": [1e-4, 3e-4], "seeds": [1, 2, 3]})
    pts = points(sweep)
    assert len(pts) == 6 and {"ppo.lr": 3e-4, "seeds": 2} in pts
    assert len({run_hash(p) for p in pts}) == 6 and run_hash({"a": 1, "b": 2}) == run_hash({"b": 2, "a": 1})
    rnd = SweepConfig(grid={"ppo.lr": [1e-4, 3e-4, 1e-3]}, mode="random", num_samples=5, seed=3)
    assert points(rnd) == points(rnd) and len(points(rnd)) == 5
    with pytest.raises(ValueError, match="num_samples"):
        points(SweepConfig(grid={"ppo.lr": [1e-4]}, mode="random"))


def test_bad_sweeps_fail_before_running(tmp_path):
    from plastix.run.config import ConfigError

    with pytest.raises(ConfigError, match="ppo.lr: must be positive"):
        launch(SweepConfig(grid={"ppo.lr": [-1.0]}, out=str(tmp_path / "s")))
    with pytest.raises(ValueError, match="base: 'nope'"):
        launch(SweepConfig(base="nope", out=str(tmp_path / "s2")))
    (tmp_path / "bad.yaml").write_text("grids: {}\n")
    with pytest.raises(ValueError, match="grids: unknown sweep field"):
        load_sweep(tmp_path / "bad.yaml")
    assert not list((tmp_path / "s" / "runs").iterdir())


def _sweep_file(tmp_path: Path) -> Path:
    spec = {"base": "quickstart", "grid": {"ppo.lr": [1e-4, 3e-4]},
            "set": {"total_steps": 32768, "log_every": 16384, "seeds": 3, "eval_episodes": 4},
            "out": str(tmp_path / "sweep"), "workers": 1}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_killed_half_way_then_relaunched(tmp_path):
    path = _sweep_file(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "plastix.cli", "sweep", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    index_path = tmp_path / "sweep" / "index.sqlite"
    deadline = time.time() + 300
    try:
        while time.time() < deadline:  # wait until one run is done and the other has started
            if index_path.exists():
                status = [r["status"] for r in Index(index_path).rows()]
                if sorted(status) == ["done", "running"]:
                    break
            assert proc.poll() is None, "the sweep ended before it could be killed"
            time.sleep(0.2)
        else:
            raise AssertionError("timed out waiting for the sweep")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = {r["hash"]: r for r in Index(index_path).rows()}
    finished = next(h for h, r in before.items() if r["status"] == "done")
    summary = Path(before[finished]["run_dir"]) / "summary.json"
    mtime = summary.stat().st_mtime

    rows = launch(load_sweep(path))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert summary.stat().st_mtime == mtime  # the finished run was not run again
    by_hash = {r["hash"]: r for r in rows}
    assert by_hash[finished]["attempts"] == 1
    resumed = next(h for h in by_hash if h != finished)
    assert by_hash[resumed]["attempts"] == 2
    for r in rows:
        run_dir = Path(r["run_dir"])
        chunks = [json.loads(line)["chunk"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert chunks == [0, 1]  # every chunk logged exactly once
        assert len(json.loads((run_dir / "summary.json").read_text())["eval_return"]) == 3
    assert sorted(p.name for p in (tmp_path / "sweep" / "runs").iterdir()) == sorted(by_hash)
    assert launch(load_sweep(path)) == rows  # a finished sweep launched again does nothing

    from plastix.analysis.report import analyze

    report = analyze(tmp_path / "sweep")
    text = report.read_text()
    assert "IQM" in text and text.count("| lr=") == 2
    for name in ("curves", "aggregates", "profiles", "ranks"):
        assert (report.parent / f"{name}.png").stat().st_size > 0
        assert (report.parent / f"{name}.pdf").stat().st_size > 0


@pytest.mark.slow
def test_sweep_on_a_local_ray_instance(tmp_path):
    pytest.importorskip("ray")
    path = _sweep_file(tmp_path)
    rows = launch(load_sweep(path).__class__(**{**yaml.safe_load(path.read_text()), "backend": "ray"}))
    assert [r["status"] for r in rows] == ["done", "done"]


def test_sweep_cli_flags(tmp_path, capsys):
    from plastix.cli import _assignments, main

    grid = _assignments(["ppo.lr=1e-4,3e-4", "net.hidden=[32, 32],[64]", "ppo.clip_value=true,false"], True)
    assert grid == {"ppo.lr": [1e-4, 3e-4], "net.hidden": [[32, 32], [64]], "ppo.clip_value": [True, False]}
    assert _assignments(["seeds=3", "env=MiniGrid-Empty-5x5-v0"], False) == {
        "seeds": 3, "env": "MiniGrid-Empty-5x5-v0"}
    assert main(["sweep", "--grid", "ppo.lr=-1,1e-4", "--out", str(tmp_path / "s")]) == 2
    assert "ppo.lr: must be positive" in capsys.readouterr().err
    assert main(["sweep", "--grid", "ppo.lrr=1", "--out", str(tmp_path / "s")]) == 2
    assert "ppo.lrr: unknown field" in capsys.readouterr().err
