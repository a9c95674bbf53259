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

from plastix.run.config import save_yaml
from plastix.run.lock import RunLockedError, holder, run_lock
from plastix.run.sweep import (
    Index,
    SweepConfig,
    _refuse_changed,
    build_config,
    identity,
    launch,
    load_sweep,
    points,
    run_hash,
    run_point,
)
from plastix.run.train import resume


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
    with pytest.raises(ValueError, match="base: recipe: unknown recipe 'nope'"):
        launch(SweepConfig(base="nope", out=str(tmp_path / "s2")))
    (tmp_path / "bad.yaml").write_text("grids: {}\n")
    with pytest.raises(ValueError, match="grids: unknown sweep field"):
        load_sweep(tmp_path / "bad.yaml")
    assert not (tmp_path / "s").exists()  # nothing is written before every point has validated


def _sweep_file(tmp_path: Path) -> Path:
    spec = {"base": "quickstart", "grid": {"ppo.lr": [1e-4, 3e-4]},
            "set": {"total_steps": 32768, "log_every": 16384, "seeds": 2, "eval_episodes": 2},
            "out": str(tmp_path / "sweep"), "workers": 1}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_sweep_killed_half_way_then_relaunched(tmp_path):
    """kill -9 of the sweep's main process only: its worker dies with it (no run keeps training), and
    an immediate relaunch trains every run exactly once."""
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
        os.kill(proc.pid, signal.SIGKILL)  # the main process alone, not its process group
        proc.wait()
    before = {r["hash"]: r for r in Index(index_path).rows()}
    running = next(Path(r["run_dir"]) for r in before.values() if r["status"] == "running")
    deadline = time.time() + 10
    while holder(running) is not None and time.time() < deadline:  # the worker dies with the sweep
        time.sleep(0.1)
    assert holder(running) is None, "the killed sweep's worker is still training"
    finished = next(h for h, r in before.items() if r["status"] == "done")
    summary = Path(before[finished]["run_dir"]) / "summary.json"
    mtime = summary.stat().st_mtime

    said = []
    rows = launch(load_sweep(path), say=said.append)
    assert [r["status"] for r in rows] == ["done", "done"]
    assert said[0].endswith("1 of 2 runs to train")  # progress while it runs, then the final state
    assert any("1 running" in m for m in said)
    assert said[-1].endswith("2 done | 0 running | 0 failed | 0 pending")
    assert summary.stat().st_mtime == mtime  # the finished run was not run again
    by_hash = {r["hash"]: r for r in rows}
    assert by_hash[finished]["attempts"] == 1
    resumed = next(h for h in by_hash if h != finished)
    assert by_hash[resumed]["attempts"] == 2
    for r in rows:
        run_dir = Path(r["run_dir"])
        chunks = [json.loads(line)["chunk"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert chunks == [0, 1]  # every chunk logged exactly once
        assert len(json.loads((run_dir / "summary.json").read_text())["eval_return"]) == 2  # seeds
    assert sorted(p.name for p in (tmp_path / "sweep" / "runs").iterdir()) == sorted(by_hash)
    assert launch(load_sweep(path)) == rows  # a finished sweep launched again does nothing

    from plastix.analysis.report import analyze

    report = analyze(tmp_path / "sweep")
    text = report.read_text()
    assert "IQM" in text and text.count("| lr=") == 2
    for name in ("curves", "aggregates", "profiles", "ranks"):
        assert (report.parent / f"{name}.png").stat().st_size > 0
        assert (report.parent / f"{name}.pdf").stat().st_size > 0


def test_a_held_lock_keeps_every_other_writer_out(tmp_path):
    sweep = SweepConfig(base="quickstart", grid={"ppo.lr": [1e-4]}, out=str(tmp_path / "s"),
                        set={"total_steps": 2048, "log_every": 2048, "seeds": 1, "eval_episodes": 2})
    h = run_hash(identity(build_config(sweep, {"ppo.lr": 1e-4})))
    run_dir = tmp_path / "s" / "runs" / h
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"env": "MiniGrid-Empty-5x5-v0"}))
    said = []
    with run_lock(run_dir):
        assert holder(run_dir) == str(os.getpid())
        with pytest.raises(RunLockedError, match=f"being trained by process {os.getpid()}"):
            resume(run_dir)
        rows = launch(sweep, say=said.append, lock_wait=0.5)
        assert rows[0]["status"] == "pending" and rows[0]["attempts"] == 0
        assert any(f"run {h} is being trained by process {os.getpid()}" in m for m in said)
        assert run_point(str(tmp_path / "s"), h, {}) == (h, "busy")
    assert holder(run_dir) is None  # released with the block (and by the OS when a holder dies)


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


def test_a_failed_run_is_recorded_and_retried_up_to_the_limit(tmp_path):
    from plastix.run.sweep import _retry

    sweep = SweepConfig(out=str(tmp_path / "s"), retries=1)
    (tmp_path / "s" / "runs").mkdir(parents=True)
    index = Index(tmp_path / "s" / "index.sqlite")
    index.add("abc", {}, tmp_path / "s" / "runs" / "abc")
    # a config that fails once training starts is recorded with its error, not raised
    assert run_point(str(tmp_path / "s"), "abc", {"total_steps": "many"}) == ("abc", "failed")
    row = index.rows()[0]
    assert row["status"] == "failed" and row["attempts"] == 1 and "total_steps" in row["error"]
    assert _retry(sweep, index, "abc", "failed")  # one retry left
    run_point(str(tmp_path / "s"), "abc", {"total_steps": "many"})
    assert not _retry(sweep, index, "abc", "failed")  # limit reached
    assert not _retry(sweep, index, "abc", "done")


def _finished_point(sweep, overrides):
    """A sweep directory holding one finished run of ``overrides`` under ``sweep``'s config, as a launch
    leaves it (index row, config.yaml, summary.json), without training."""
    config = build_config(sweep, overrides)
    h = run_hash(identity(config))
    run_dir = Path(sweep.out) / "runs" / h
    run_dir.mkdir(parents=True)
    save_yaml(config, run_dir / "config.yaml")
    (run_dir / "summary.json").write_text("{}")
    index = Index(Path(sweep.out) / "index.sqlite")
    index.add(h, overrides, run_dir)
    index.mark(h, "done")
    return h


def test_a_run_is_its_whole_config_and_a_changed_relaunch_is_refused_by_name(tmp_path):
    small = {"total_steps": 2048, "log_every": 2048, "seeds": 1, "eval_episodes": 2}
    old = SweepConfig(grid={"ppo.lr": [1e-4]}, set=small, out=str(tmp_path / "s"))
    h = _finished_point(old, {"ppo.lr": 1e-4})
    # the same grid value under another set is another run, and relaunching into the old directory is
    # refused, naming the field that changed (nothing is trained or written)
    new = SweepConfig(grid={"ppo.lr": [1e-4]}, set={**small, "total_steps": 4096}, out=old.out)
    assert run_hash(identity(build_config(new, {"ppo.lr": 1e-4}))) != h
    with pytest.raises(ValueError, match=r"out: .* trained from another config \(run \w+, total_steps: "
                                         r"2048 -> 4096\).*--restart-changed"):
        launch(new)
    assert not (Path(old.out) / "sweep.yaml").exists()
    assert launch(old)[0]["status"] == "done"  # the sweep's own config still finds its finished run
    # with restart_changed the old run is marked replaced and leaves the index's rows
    _refuse_changed(SweepConfig(**{**new.__dict__, "restart_changed": True}), Path(old.out),
                    [({"ppo.lr": 1e-4}, build_config(new, {"ppo.lr": 1e-4}))])
    index = Index(Path(old.out) / "index.sqlite")
    assert index.rows() == [] and index.rows(replaced=True)[0]["status"] == "replaced"


def test_ray_options_with_the_local_backend_are_refused(tmp_path, capsys):
    from plastix.cli import main

    for flag in (["--address", "auto"], ["--cpus-per-run", "2"]):
        assert main(["sweep", "--grid", "ppo.lr=1e-4", "--out", str(tmp_path / "s"), *flag]) == 2
        name = flag[0].removeprefix("--").replace("-", "_")
        assert f"{name}: a Ray option, but the backend is local" in capsys.readouterr().err
