"""The fields a run logs: each one's name, unit, meaning and how a chunk's iterations reduce to the value
written to ``metrics.jsonl``.

Whatever computes a logged value declares its field beside it (the agents' ``fields``, the experts'
`plastix.nets.moe.MOE_FIELDS`, the plasticity hook's ``fields``, the loop's `plastix.run.row`); the run
log reduces every value as its field says, a value no field declares is refused when the run's program is
traced (`plastix.run.load.traced_program`), and docs/metrics.md is checked against the declarations
(``tests/test_fields.py``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property


class Reduce(enum.Enum):
    """How a chunk's per-iteration values become the logged one."""

    EPISODES = "per episode"
    """a per-seed mean over the episodes that ended in the chunk: summed over them, over their count"""
    UPDATES = "mean over updates"
    """the mean over the chunk's updating iterations (and seeds)"""
    MEASURED = "mean over measurements"
    """the mean over the iterations that measured it (and seeds): finite there, NaN elsewhere"""
    LAST = "at chunk end"
    """its value after the chunk's last iteration (mean over seeds)"""
    RUN = "per chunk"
    """written by the run itself once per chunk (counters, rates, evaluations)"""


@dataclass(frozen=True)
class Field:
    """One logged field. A ``<word>`` in ``name`` (``<layer>``, ``<task>``) matches any non-empty part of
    a key, so one field names a metric of every layer or task."""

    name: str
    unit: str
    meaning: str
    reduce: Reduce = Reduce.UPDATES

    @cached_property
    def _pattern(self) -> re.Pattern:
        parts = re.split(r"<[a-z_]+>", self.name)
        return re.compile(".+".join(re.escape(p) for p in parts))

    def matches(self, key: str) -> bool:
        """Whether ``key`` is this field (each ``<word>`` standing for some part of it)."""
        return self._pattern.fullmatch(key) is not None


def _find(fields: Iterable[Field], key: str) -> Field | None:
    return next((f for f in fields if f.matches(key)), None)


def undeclared(fields: Iterable[Field], keys: Iterable[str]) -> list[str]:
    """The ``keys`` none of ``fields`` declares."""
    fields = tuple(fields)
    return [k for k in keys if _find(fields, k) is None]


def field_of(fields: Iterable[Field], key: str) -> Field:
    """The first of ``fields`` that ``key`` is; ``KeyError`` naming the key where none declares it."""
    field = _find(fields, key)
    if field is not None:
        return field
    raise KeyError(f"{key}: no declared field is logged under this name; declare it beside the code that "
                   f"computes it (see plastix.fields)")


def markdown_table(fields: Iterable[Field]) -> str:
    """``fields`` as the Markdown table docs/metrics.md shows (and its test compares)."""
    rows = [f"| `{f.name}` | {f.unit} | {f.reduce.value} | {f.meaning} |\n" for f in fields]
    return "| field | unit | over a chunk | meaning |\n|---|---|---|---|\n" + "".join(rows)
