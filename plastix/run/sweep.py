"""Hyper-parameter sweeps: a grid or random search over any config fields, run on a local process pool
or on a Ray cluster, idempotent across crashes.

Each point of the sweep is one run (its seeds are vmapped inside the run, as every on-device agent does)
in ``<sweep dir>/runs/<hash of its overrides>``. An SQLite index (``<sweep dir>/index.sqlite``: hash,
overrides, run dir, status, attempts) records progress, so a sweep launched again skips finished runs,
resumes interrupted ones from their checkpoints and retries failed ones; thousands of runs stay
queryable with plain SQL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import sqlite3
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from plastix.run.config import RECIPES_DIR, from_dict, to_dict, validate
from plastix.run.train import resume, train

BACKENDS = ("local", "ray")
MODES = ("grid", "random")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: base config, the fields to vary, and where and how to run it."""

    base: str = "quickstart"
    """Recipe name or path of a run-config YAML the sweep starts from."""
    grid: dict[str, list] = field(default_factory=dict)
    """Field path -> values, e.g. {"ppo.lr": [1e-4, 3e-4]}; grid mode takes their product."""
    mode: str = "grid"
    """grid (every combination) or random (num_samples draws, one value per field per draw)."""
    num_samples: int = 0
    """Random mode: how many configurations to draw."""
    set: dict[str, Any] = field(default_factory=dict)
    """Fields fixed for every run (applied before the swept ones), e.g. {"total_steps": 100000}."""
    seed: int = 0
    """Random mode's sampling seed."""
    out: str = "sweeps/sweep"
    """Sweep directory."""
    backend: str = "local"
    """local (process pool) or ray."""
    workers: int = 0
    """Local: processes at once (0 = half the CPUs, at least 1)."""
    address: str = ""
    """Ray: cluster address ("" starts a local Ray instance; "auto" joins a running one)."""
    cpus_per_run: float = 1.0
    """Ray: CPUs reserved per run."""
    gpus_per_run: float = 0.0
    """Ray: GPUs reserved per run."""


def _set_field(data: dict, path: str, value: Any) -> None:
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


def points(sweep: SweepConfig) -> list[dict[str, Any]]:
    """The sweep's override dicts ``{field path: value}`` in a fixed order."""
    if sweep.mode not in MODES:
        raise ValueError(f"mode: {sweep.mode!r} is not one of {', '.join(MODES)}")
    names = sorted(sweep.grid)
    if sweep.mode == "grid":
        return [dict(zip(names, combo, strict=True)) for combo in
                itertools.product(*(sweep.grid[n] for n in names))]
    if sweep.num_samples <= 0:
        raise ValueError("num_samples: random mode needs a positive number of samples")
    rng = np.random.default_rng(sweep.seed)
    return [{n: sweep.grid[n][rng.integers(len(sweep.grid[n]))] for n in names}
            for _ in range(sweep.num_samples)]


def run_hash(overrides: dict[str, Any]) -> str:
    """A short stable id of a run's overrides."""
    return hashlib.sha1(json.dumps(overrides, sort_keys=True, default=str).encode()).hexdigest()[:12]


def build_config(sweep: SweepConfig, overrides: dict[str, Any]):
    """The validated run config of one sweep point (fails before anything runs)."""
    base_path = Path(sweep.base)
    if not base_path.suffix:
        base_path = RECIPES_DIR / f"{sweep.base}.yaml"
    if not base_path.is_file():
        raise ValueError(f"base: {sweep.base!r} is neither a recipe nor a YAML file")
    data = to_dict(from_dict(yaml.safe_load(base_path.read_text()) or {}))
    for path, value in {**sweep.set, **overrides}.items():
        _set_field(data, path, value)
    return validate(from_dict(data))


class Index:
    """The sweep's SQLite index of runs."""

    def __init__(self, path: Path):
        self.path = path
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS runs (hash TEXT PRIMARY KEY, overrides TEXT, run_dir TEXT,"
                       " status TEXT, attempts INTEGER DEFAULT 0, error TEXT, updated REAL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def add(self, h: str, overrides: dict, run_dir: Path) -> None:
        with self._connect() as db:
            db.execute("INSERT OR IGNORE INTO runs (hash, overrides, run_dir, status, updated) "
                       "VALUES (?, ?, ?, 'pending', ?)",
                       (h, json.dumps(overrides), str(run_dir), time.time()))

    def mark(self, h: str, status: str, error: str = "") -> None:
        with self._connect() as db:
            extra = ", attempts = attempts + 1" if status == "running" else ""
            db.execute(f"UPDATE runs SET status = ?, error = ?, updated = ?{extra} WHERE hash = ?",
                       (status, error, time.time(), h))

    def rows(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            cur = db.execute("SELECT hash, overrides, run_dir, status, attempts, error FROM runs "
                             "ORDER BY rowid")
            return [{"hash": h, "overrides": json.loads(o), "run_dir": d, "status": s, "attempts": a,
                     "error": e} for h, o, d, s, a, e in cur.fetchall()]


def run_point(sweep_dir: str, h: str, config_dict: dict) -> tuple[str, str]:
    """Train (or resume) one sweep point; returns (hash, status). Runs in a worker process."""
    index = Index(Path(sweep_dir) / "index.sqlite")
    run_dir = Path(sweep_dir) / "runs" / h
    index.mark(h, "running")
    try:
        if (run_dir / "config.yaml").is_file():
            resume(run_dir)
        else:
            config = dataclasses.replace(from_dict(config_dict), out_dir=str(run_dir.parent), name=h,
                                         progress=False)
            train(config)
    except Exception:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        index.mark(h, "failed", traceback.format_exc(limit=5))
        return h, "failed"
    index.mark(h, "done")
    return h, "done"


def launch(sweep: SweepConfig) -> list[dict[str, Any]]:
    """Run every point not finished yet; returns the index rows when all have ended."""
    if sweep.backend not in BACKENDS:
        raise ValueError(f"backend: {sweep.backend!r} is not one of {', '.join(BACKENDS)}")
    sweep_dir = Path(sweep.out)
    (sweep_dir / "runs").mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(dataclasses.asdict(sweep), sort_keys=False))
    index = Index(sweep_dir / "index.sqlite")
    todo = []
    for overrides in points(sweep):
        config = build_config(sweep, overrides)  # every point validates before any run starts
        h = run_hash(overrides)
        run_dir = sweep_dir / "runs" / h
        index.add(h, overrides, run_dir)
        finished = (run_dir / "summary.json").is_file()
        if finished:
            index.mark(h, "done")
        else:
            todo.append((h, to_dict(config)))
    if sweep.backend == "ray":
        _run_ray(sweep, sweep_dir, todo)
    else:
        _run_local(sweep, sweep_dir, todo)
    return index.rows()


def _run_local(sweep: SweepConfig, sweep_dir: Path, todo: list) -> None:
    if not todo:
        return
    workers = sweep.workers or max(1, (os.cpu_count() or 2) // 2)
    # spawn: JAX is not fork-safe once initialised
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run_point, str(sweep_dir), h, cfg) for h, cfg in todo]
        for future in as_completed(futures):
            future.result()


def _run_ray(sweep: SweepConfig, sweep_dir: Path, todo: list) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("backend: ray is not installed; pip install 'plastix[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=sweep.address or None, ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(num_cpus=sweep.cpus_per_run, num_gpus=sweep.gpus_per_run)(run_point)
    ray.get([task.remote(str(sweep_dir.resolve()), h, cfg) for h, cfg in todo])


def load_sweep(path: str | Path) -> SweepConfig:
    """A sweep from YAML (fields of `SweepConfig`)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    names = {f.name for f in dataclasses.fields(SweepConfig)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown sweep field; accepted: {', '.join(sorted(names))}")
    return SweepConfig(**data)
