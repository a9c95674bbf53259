"""Run outputs while training: metrics.jsonl, TensorBoard events, optional Weights & Biases, the
progress bar."""

from __future__ import annotations

import importlib.util
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

WANDB_MODES = ("online", "offline", "disabled")


@dataclass(frozen=True)
class WandbOptions:
    """Weights & Biases logging beside metrics.jsonl and TensorBoard (``--wandb.*``, the ``wandb`` extra;
    CleanRL's ``--track``); off unless a project is named."""

    project: str = ""
    """W&B project; empty: no W&B logging."""
    entity: str = ""
    """W&B entity (user or team); empty: the account's default."""
    group: str = ""
    """W&B group (e.g. a sweep's name); empty: none."""
    tags: tuple[str, ...] = ()
    """W&B tags."""
    mode: str = "online"
    """online, offline (no network; `wandb sync <run dir>/wandb/offline-run-*` uploads later) or disabled."""


def check_wandb(options: WandbOptions) -> None:
    """Raise ``ValueError`` naming the field for W&B settings that cannot work."""
    if options.mode not in WANDB_MODES:
        raise ValueError(f"wandb.mode: {options.mode!r} is not one of {', '.join(WANDB_MODES)}")
    if not options.project:
        if options != WandbOptions():
            raise ValueError("wandb.project: the other --wandb.* options need a project; name one, or leave "
                             "them at their defaults")
        return
    if importlib.util.find_spec("wandb") is None:
        raise ValueError("wandb.project: W&B logging needs the wandb package: pip install 'plastix[wandb]'")


def scalars(row: dict[str, Any]) -> dict[str, float]:
    """A metrics row's plottable values: scalars as they are, per-seed lists as ``<key>/seed_<i>``
    (None where a seed had nothing to report is left out)."""
    out: dict[str, float] = {}
    for key, value in row.items():
        if isinstance(value, int | float) and key not in ("chunk", "step"):
            out[key] = value
        elif isinstance(value, list):
            out.update({f"{key}/seed_{i}": v for i, v in enumerate(value) if isinstance(v, int | float)})
    return out


class WandbRun:
    """One W&B run per run directory: named after it, the config and the directory recorded, its id kept
    in ``wandb_id`` so that a resumed run continues the same W&B run; env steps are the x axis (rows
    logged again after a resume would otherwise be dropped as going back in W&B's own step)."""

    def __init__(self, options: WandbOptions, run_dir: Path, config: dict[str, Any]):
        import wandb  # the optional extra; check_wandb has found it

        id_file = run_dir / "wandb_id"
        if not id_file.exists():
            id_file.write_text(secrets.token_hex(4))
        self.run = wandb.init(
            project=options.project, entity=options.entity or None, group=options.group or None,
            tags=list(options.tags) or None, mode=options.mode, name=run_dir.name, id=id_file.read_text(),
            resume="allow", dir=str(run_dir), config={**config, "run_dir": str(run_dir.resolve())})
        self.run.define_metric("env_step")
        self.run.define_metric("*", step_metric="env_step")

    def write(self, row: dict[str, Any]) -> None:
        self.run.log({"env_step": row["step"], **scalars(row)})

    def close(self) -> None:
        self.run.finish()


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and mirrors scalars to TensorBoard (and to
    W&B when ``wandb`` names a project; ``config`` is what that run records)."""

    def __init__(self, run_dir: Path, resume_chunk: int = 0, resume_step: int = 0,
                 wandb: WandbOptions = WandbOptions(), config: dict[str, Any] | None = None):
        from tensorboardX import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        if self.path.exists():  # drop lines written after the checkpoint we resume from
            rows = [json.loads(line) for line in self.path.read_text().splitlines() if line]
            kept = [r for r in rows if r["chunk"] < resume_chunk]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step or None)
        self.wandb = WandbRun(wandb, run_dir, config or {}) if wandb.project else None

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in scalars(row).items():
            self.tb.add_scalar(key, value, row["step"])
        self.tb.flush()
        if self.wandb is not None:
            self.wandb.write(row)

    def close(self) -> None:
        self.tb.close()
        if self.wandb is not None:
            self.wandb.close()


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of a run's ``metrics.jsonl``."""
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


class ProgressBar:
    """A rich progress bar over environment steps showing steps/s and the latest mean return."""

    def __init__(self, total: int, done: int, enabled: bool):
        self.enabled = enabled
        if not enabled:
            return
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.total:,.0f} steps"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("return {task.fields[ret]}"),
            TimeRemainingColumn(),
        )
        self.task = self.progress.add_task("train", total=total, completed=done, rate="", ret="-")
        self.progress.start()

    def update(self, step: int, steps_per_s: float, ret: float | None) -> None:
        if self.enabled:
            self.progress.update(
                self.task,
                completed=step,
                rate=f"{steps_per_s:,.0f} steps/s",
                ret="-" if ret is None else f"{ret:.3f}",
            )

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()
