"""Orbax save / restore of the loop's carry at chunk boundaries, failing safe.

Orbax writes a checkpoint into a temporary directory and renames it when complete; after that,
plastix writes a manifest (size and SHA-256 of every file) into it, atomically. A checkpoint counts only
with a manifest that its files still match, so a save cut short by a kill, or a file truncated or
damaged later, is found before restoring: `Checkpointer.restore_latest` reports it in one line (which
checkpoint, which file), deletes it (the trainer, holding the run's lock) or skips it (a reader: a
checkpoint being saved has no manifest yet), and restores the newest intact one. A reader's
checkpointer is read-only: it creates, cleans and deletes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

MANIFEST = "plastix_manifest.json"


class ResumeError(ValueError):
    """A run directory cannot be resumed (missing, or its checkpoint does not fit its config)."""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(step_dir: Path) -> list[Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.name != MANIFEST)


class Checkpointer:
    """Keeps the latest ``max_to_keep`` checkpoints of a run, indexed by chunk number."""

    def __init__(self, directory: Path, max_to_keep: int = 2, read_only: bool = False,
                 background: bool = False):
        """``background``: a save returns once the state is copied, and writes it while training goes on
        (only for trees whose buffers the caller does not donate afterwards); its manifest is written
        when the next save, `latest` or `close` waits for it."""
        self.directory = Path(directory).resolve()
        self.read_only = read_only
        self.background = background and not read_only
        self._pending: int | None = None  # a background save whose manifest is not written yet
        keep = {"max_to_keep": None, "save_interval_steps": 0} if read_only else {"max_to_keep": max_to_keep}
        absl = logging.getLogger("absl")
        level = absl.level
        absl.setLevel(logging.ERROR)  # orbax logs a warning for every read-only manager
        try:
            self.manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    **keep, enable_async_checkpointing=self.background, create=not read_only,
                    read_only=read_only,
                ),
            )
        finally:
            absl.setLevel(level)

    def latest(self) -> int | None:
        """The chunk number of the newest checkpoint whose save finished (it has a manifest)."""
        self.finish()
        done = [s for s in self.manager.all_steps() if (self.directory / str(s) / MANIFEST).is_file()]
        return max(done, default=None)

    def save(self, chunk: int, tree: Any) -> None:
        self.finish()
        if chunk in self.manager.all_steps():  # a partial or damaged one, left from before a restart
            self.manager.delete(chunk)
        self.manager.save(chunk, args=ocp.args.StandardSave(tree), force=True)
        self._pending = chunk
        if not self.background:
            self.finish()

    def finish(self) -> None:
        """Wait for the save in progress, then write its manifest: from then on it counts."""
        if self._pending is None:
            return
        self.manager.wait_until_finished()
        step_dir = self.directory / str(self._pending)
        self._pending = None
        manifest = {str(p.relative_to(step_dir)): [p.stat().st_size, _digest(p)] for p in _files(step_dir)}
        tmp = step_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest))
        os.replace(tmp, step_dir / MANIFEST)

    def problem(self, chunk: int) -> str | None:
        """Why checkpoint ``chunk`` cannot be trusted (naming the file), or None when it is intact."""
        step_dir = self.directory / str(chunk)
        if not (step_dir / MANIFEST).is_file():
            return f"{step_dir} has no manifest: its save did not finish"
        manifest = json.loads((step_dir / MANIFEST).read_text())
        for name, (size, digest) in manifest.items():
            path = step_dir / name
            if not path.is_file():
                return f"{path} is missing"
            if path.stat().st_size != size:
                return f"{path} has {path.stat().st_size} bytes, {size} were written"
            if _digest(path) != digest:
                return f"{path} differs from what was written"
        return None

    def restore(self, chunk: int, like: Any) -> Any:
        """Restore into the structure, shapes, dtypes and shardings of ``like``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self.manager.restore(chunk, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as err:
            raise ResumeError(
                f"resume: checkpoint {chunk} does not match this run's config ({err})"
            ) from None

    def restore_latest(self, like: Any, warn: Callable[[str], None]) -> tuple[int, Any] | None:
        """``(chunk, tree)`` of the newest intact checkpoint, or None when there is none. Each damaged
        or partial newer one is reported through ``warn`` in one line, and deleted unless read-only."""
        steps = sorted(self.manager.all_steps(), reverse=True) if self.directory.is_dir() else []
        for chunk in steps:
            problem = self.problem(chunk)
            if problem is None:
                return chunk, self.restore(chunk, like)
            older = [s for s in steps if s < chunk]
            then = f"trying checkpoint {max(older)}" if older else \
                "no older checkpoint" if self.read_only else "no older checkpoint: starting over"
            kept = " (left as it is: it may be a save in progress)" if self.read_only else ""
            warn(f"checkpoint {chunk} is unusable ({problem}){kept}; {then}")
            if not self.read_only:
                self.manager.delete(chunk)
        return None

    def close(self) -> None:
        self.finish()
        self.manager.close()
