"""Run outputs while training: metrics.jsonl, TensorBoard events, the progress bar."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn


class MetricsLog:
    """Appends one JSON object per line to ``metrics.jsonl`` and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: Path, resume_chunk: int = 0, resume_step: int = 0):
        from tensorboardX import SummaryWriter

        self.path = run_dir / "metrics.jsonl"
        if self.path.exists():  # drop lines written after the checkpoint we resume from
            rows = [json.loads(line) for line in self.path.read_text().splitlines() if line]
            kept = [r for r in rows if r["chunk"] < resume_chunk]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=resume_step or None)

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        for key, value in row.items():
            if isinstance(value, int | float) and key != "chunk":
                self.tb.add_scalar(key, value, row["step"])
            elif isinstance(value, list):  # per seed; None where a seed had nothing to report
                for i, v in enumerate(value):
                    if isinstance(v, int | float):
                        self.tb.add_scalar(f"{key}/seed_{i}", v, row["step"])
        self.tb.flush()

    def close(self) -> None:
        self.tb.close()


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
