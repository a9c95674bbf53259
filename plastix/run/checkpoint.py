"""Orbax save / restore of the loop's carry at chunk boundaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class ResumeError(ValueError):
    """A run directory cannot be resumed (missing, or its checkpoint does not fit its config)."""


class Checkpointer:
    """Keeps the latest ``max_to_keep`` checkpoints of a run, indexed by chunk number."""

    def __init__(self, directory: Path, max_to_keep: int = 2):
        self.manager = ocp.CheckpointManager(
            Path(directory).resolve(),
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True
            ),
        )

    def latest(self) -> int | None:
        """The chunk number of the newest complete checkpoint, if any."""
        return self.manager.latest_step()

    def save(self, chunk: int, tree: Any) -> None:
        self.manager.save(chunk, args=ocp.args.StandardSave(tree), force=True)
        self.manager.wait_until_finished()

    def restore(self, chunk: int, like: Any) -> Any:
        """Restore into the structure, shapes, dtypes and shardings of ``like``."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
        try:
            return self.manager.restore(chunk, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as err:
            raise ResumeError(
                f"resume: checkpoint {chunk} does not match this run's config ({err})"
            ) from None

    def close(self) -> None:
        self.manager.close()
