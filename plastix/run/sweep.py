"""Hyper-parameter sweeps: a grid or random search over any config fields, run on a local process pool
or on a Ray cluster, idempotent across crashes.

Each point of the sweep is one run (its seeds are vmapped inside the run, as every on-device agent does)
in ``<sweep dir>/runs/<hash of its whole resolved config>``, so a run is reused only for the very config
it trained; relaunching into a directory whose runs were trained from another base or ``set`` is refused
by name (or, with ``restart_changed``, the changed points train afresh and their old runs are left out of
the index's rows). An SQLite index (``<sweep dir>/index.sqlite``: hash,
overrides, run dir, status, attempts, last error) records progress, so a sweep launched again skips
finished runs, resumes interrupted ones from their checkpoints and retries failed ones; thousands of
runs stay queryable with plain SQL. A run is trained by one process at a time (`plastix.run.lock`),
workers die with the sweep's process, and a failed run is tried again up to ``retries`` times.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import itertools
import json
import os
import signal
import sqlite3
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from plastix.run.config import ConfigError, from_dict, load_recipe, to_dict, validate
from plastix.run.lock import RunLockedError, holder
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
    retries: int = 1
    """Times a failed run is tried again within one launch (its error is kept in the index)."""
    restart_changed: bool = False
    """Relaunching into a sweep directory whose runs of the same points were trained from another config
    (a changed base, set or recipe): train those points afresh (the old runs stay on disk, marked
    replaced in the index) instead of refusing."""


def _set_field(data: dict, path: str, value: Any) -> None:
    """Set ``path`` to ``value``; a mapping set on a section merges into it (field by field), so one grid
    value can set several fields together, e.g. ``net: [{bottleneck: gap}, {bottleneck: perconv,
    moe: {kind: soft, experts: 1}}]``; the path ``.`` merges a mapping into the whole config (values
    that set the env and its agent settings together)."""
    if path == ".":
        if not isinstance(value, dict):
            raise ValueError(f"grid: values of '.' merge into the whole config and must be mappings, got "
                             f"{value!r}")
        for key, sub in value.items():
            _set_field(data, key, sub)
        return
    node = data
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        for key, sub in value.items():
            _set_field(node[last], key, sub)
    else:
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


def run_hash(data: dict[str, Any]) -> str:
    """A short stable id of a mapping (key order does not count)."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


PLACEMENT = ("out_dir", "name", "progress")  # where a run goes and how it shows, not what it trains


def identity(config: Any) -> dict[str, Any]:
    """What makes a sweep run the same run: its whole resolved config but where it is written."""
    return {k: v for k, v in to_dict(config).items() if k not in PLACEMENT}


def _first_difference(old: Any, new: Any, path: str = "") -> str:
    """``field: old -> new`` for the first field where two config mappings differ."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return _first_difference(old.get(key), new.get(key), f"{path}{key}.")
    return f"{path.rstrip('.')}: {old!r} -> {new!r}"


def check_sweep(sweep: SweepConfig) -> None:
    """Refuse settings that would do nothing: Ray's options with the local backend."""
    if sweep.backend not in BACKENDS:
        raise ValueError(f"backend: {sweep.backend!r} is not one of {', '.join(BACKENDS)}")
    if sweep.retries < 0:
        raise ValueError(f"retries: must be >= 0, got {sweep.retries}")
    if sweep.backend == "local":
        ray_only = {"address": (sweep.address, ""), "cpus_per_run": (sweep.cpus_per_run, 1.0),
                    "gpus_per_run": (sweep.gpus_per_run, 0.0)}
        for name, (value, default) in ray_only.items():
            if value != default:
                raise ValueError(f"{name}: a Ray option, but the backend is local (processes: --workers); "
                                 f"add --backend ray or leave {name} out")


def build_config(sweep: SweepConfig, overrides: dict[str, Any]):
    """The validated run config of one sweep point (fails before anything runs)."""
    try:
        data = to_dict(load_recipe(sweep.base))
    except ConfigError as err:
        raise ValueError(f"base: {err}") from None
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

    def rows(self, replaced: bool = False) -> list[dict[str, Any]]:
        """Every run, in the order added; runs a relaunch replaced (``restart_changed``) only when asked."""
        with self._connect() as db:
            cur = db.execute("SELECT hash, overrides, run_dir, status, attempts, error FROM runs "
                             "ORDER BY rowid")
            return [{"hash": h, "overrides": json.loads(o), "run_dir": d, "status": s, "attempts": a,
                     "error": e} for h, o, d, s, a, e in cur.fetchall() if replaced or s != "replaced"]


def run_point(sweep_dir: str, h: str, config_dict: dict) -> tuple[str, str]:
    """Train (or resume) one sweep point; returns (hash, status): done, failed, or busy when another
    live process holds the run directory's lock. Runs in a worker process."""
    index = Index(Path(sweep_dir) / "index.sqlite")
    run_dir = Path(sweep_dir) / "runs" / h
    if holder(run_dir) is not None:
        return h, "busy"
    index.mark(h, "running")
    try:
        if (run_dir / "config.yaml").is_file():
            resume(run_dir, progress=False)
        else:
            config = dataclasses.replace(from_dict(config_dict), out_dir=str(run_dir.parent), name=h,
                                         progress=False)
            train(config)
    except RunLockedError:
        return h, "busy"  # the other process reports the run's status
    except Exception:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        index.mark(h, "failed", traceback.format_exc(limit=5))
        return h, "failed"
    index.mark(h, "done")
    return h, "done"


def _wait_for_lock(run_dir: Path, seconds: float) -> str | None:
    """The pid still holding ``run_dir``'s lock after waiting up to ``seconds`` (a worker of a sweep
    killed a moment ago takes a little while to die), or None once it is free."""
    deadline = time.time() + seconds
    while (pid := holder(run_dir)) is not None and time.time() < deadline:
        time.sleep(0.2)
    return pid


def launch(sweep: SweepConfig, say=print, lock_wait: float = 10.0) -> list[dict[str, Any]]:
    """Run every point not finished yet; returns the index rows when all have ended. A run another live
    process is training (its run directory's lock is held) is waited for up to ``lock_wait`` seconds,
    then skipped with a message: no run directory ever has two writers."""
    check_sweep(sweep)
    configs = [(overrides, build_config(sweep, overrides)) for overrides in points(sweep)]  # all validate
    sweep_dir = Path(sweep.out)
    _refuse_changed(sweep, sweep_dir, configs)
    (sweep_dir / "runs").mkdir(parents=True, exist_ok=True)
    (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(dataclasses.asdict(sweep), sort_keys=False))
    index = Index(sweep_dir / "index.sqlite")
    todo = []
    for overrides, config in configs:
        h = run_hash(identity(config))
        run_dir = sweep_dir / "runs" / h
        index.add(h, overrides, run_dir)
        pid = _wait_for_lock(run_dir, lock_wait)
        if (run_dir / "summary.json").is_file() and pid is None:
            index.mark(h, "done")
        elif pid is not None:
            say(f"run {h} is being trained by process {pid} (another sweep?): skipped; launch again once "
                f"it has ended")
        else:
            todo.append((h, to_dict(config)))
    if todo:
        say(f"sweep {sweep_dir}: {len(todo)} of {len(index.rows())} runs to train")
        run = _run_ray if sweep.backend == "ray" else _run_local
        run(sweep, sweep_dir, todo, _Progress(sweep_dir, index, say))
    return index.rows()


def _refuse_changed(sweep: SweepConfig, sweep_dir: Path, configs: list[tuple[dict, Any]]) -> None:
    """Runs already in ``sweep_dir`` for these points but trained from another config: refused by name,
    or (``restart_changed``) marked replaced so the points train afresh."""
    if not (sweep_dir / "index.sqlite").is_file():
        return
    index = Index(sweep_dir / "index.sqlite")
    now = {json.dumps(o, sort_keys=True): identity(c) for o, c in configs}
    keyed = [(r, json.dumps(r["overrides"], sort_keys=True)) for r in index.rows()]
    changed = [(r, now[key]) for r, key in keyed if key in now and r["hash"] != run_hash(now[key])]
    if not changed:
        return
    if sweep.restart_changed:
        for row, _ in changed:
            index.mark(row["hash"], "replaced")
        return
    row, new = changed[0]
    old_config = Path(row["run_dir"]) / "config.yaml"
    old = identity(from_dict(yaml.safe_load(old_config.read_text()))) if old_config.is_file() else {}
    raise ValueError(f"out: {sweep_dir} holds {len(changed)} run(s) of these points trained from another "
                     f"config (run {row['hash']}, {_first_difference(old, new)}); relaunch with the "
                     f"sweep's own base and set, pick another --out, or add --restart-changed to train the "
                     f"changed points afresh")


class _Progress:
    """Prints the sweep's state (done / running / failed, each running run's step) when it changes and
    at least every ``every`` seconds."""

    def __init__(self, sweep_dir: Path, index: Index, say, every: float = 30.0):
        self.sweep_dir, self.index, self.say, self.every = sweep_dir, index, say, every
        self.last, self.last_t = "", 0.0

    def _step(self, run_dir: str) -> str:
        path = Path(run_dir) / "metrics.jsonl"
        try:
            lines = path.read_text().splitlines()
            return f"{json.loads(lines[-1])['step']:,}" if lines else "compiling"
        except (OSError, ValueError, KeyError):
            return "starting"

    def __call__(self, force: bool = False) -> None:
        rows = self.index.rows()
        counts = {s: sum(r["status"] == s for r in rows) for s in ("done", "running", "failed", "pending")}
        running = ", ".join(f"{r['hash']} at step {self._step(r['run_dir'])}" for r in rows
                            if r["status"] == "running")
        line = " | ".join(f"{n} {s}" for s, n in counts.items()) + (f" | {running}" if running else "")
        if force or line != self.last or time.time() - self.last_t > self.every:
            self.say(f"sweep {self.sweep_dir}: {line}")
            self.last, self.last_t = line, time.time()


def _die_with_parent() -> None:
    """Worker initialiser: the kernel kills this process when the sweep's process dies (Linux), so a
    killed sweep leaves no run training behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _retry(sweep: SweepConfig, index: Index, h: str, status: str) -> bool:
    attempts = {r["hash"]: r["attempts"] for r in index.rows()}.get(h, 0)
    return status == "failed" and attempts <= sweep.retries


def _run_local(sweep: SweepConfig, sweep_dir: Path, todo: list, progress: _Progress) -> None:
    workers = sweep.workers or max(1, (os.cpu_count() or 2) // 2)
    configs = dict(todo)
    # spawn: JAX is not fork-safe once initialised
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=get_context("spawn"),
                             initializer=_die_with_parent) as pool:
        pending = {pool.submit(run_point, str(sweep_dir), h, cfg) for h, cfg in todo}
        while pending:
            finished, pending = wait(pending, timeout=2.0, return_when=FIRST_COMPLETED)
            for future in finished:
                h, status = future.result()
                if _retry(sweep, progress.index, h, status):
                    progress.say(f"run {h} failed; trying again")
                    pending.add(pool.submit(run_point, str(sweep_dir), h, configs[h]))
            progress()
    progress(force=True)


def _run_ray(sweep: SweepConfig, sweep_dir: Path, todo: list, progress: _Progress) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("backend: ray is not installed; pip install 'plastix[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=sweep.address or None, ignore_reinit_error=True, log_to_driver=False)
    task = ray.remote(num_cpus=sweep.cpus_per_run, num_gpus=sweep.gpus_per_run)(run_point)
    configs = dict(todo)
    where = str(sweep_dir.resolve())
    pending = [task.remote(where, h, cfg) for h, cfg in todo]
    while pending:
        finished, pending = ray.wait(pending, timeout=2.0)
        for ref in finished:
            h, status = ray.get(ref)
            if _retry(sweep, progress.index, h, status):
                progress.say(f"run {h} failed; trying again")
                pending.append(task.remote(where, h, configs[h]))
        progress()
    progress(force=True)


SWEEPS_DIR = Path(__file__).resolve().parent.parent / "recipes" / "sweeps"


def list_sweeps() -> list[str]:
    """The sweep files shipped with plastix (``plastix sweep NAME``)."""
    return sorted(p.stem for p in SWEEPS_DIR.glob("*.yaml"))


def load_sweep(path: str | Path) -> SweepConfig:
    """A sweep from YAML (fields of `SweepConfig`): a path, or the name of a shipped sweep file."""
    file = Path(path)
    if not file.is_file() and (SWEEPS_DIR / f"{path}.yaml").is_file():
        file = SWEEPS_DIR / f"{path}.yaml"
    if not file.is_file():
        raise ValueError(f"sweep: no such file {str(path)!r}; shipped sweeps: {', '.join(list_sweeps())}")
    data = yaml.safe_load(file.read_text()) or {}
    names = {f.name for f in dataclasses.fields(SweepConfig)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown sweep field; accepted: {', '.join(sorted(names))}")
    return SweepConfig(**data)
