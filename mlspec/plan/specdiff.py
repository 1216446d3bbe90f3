"""What a branch changes in the specs, resource by resource: a pure comparison of two spec sets.

This is the reviewer's view (`mlspec diff`, `mlspec plan --base`): which resources a pull request
adds, removes or edits, and which fields. What that does to the live world is the plan's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlspec.plan.builder import field_changes
from mlspec.plan.model import Change


@dataclass(frozen=True, slots=True)
class SpecChange:
    address: str
    status: str  # added | removed | changed
    changes: tuple[Change, ...] = ()
    file: str = ""

    @property
    def symbol(self) -> str:
        return {"added": "+", "removed": "-", "changed": "~"}[self.status]

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "status": self.status, "file": self.file,
                "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in self.changes]}


def compare(
    before: Mapping[str, Mapping[str, Any]],
    after: Mapping[str, Mapping[str, Any]],
    files: Mapping[str, str] | None = None,
) -> list[SpecChange]:
    """`before`/`after`: address -> {"metadata": ..., "spec": ...}; `files`: address -> where it is written."""
    where = files or {}
    out = []
    for address in sorted(set(before) | set(after)):
        old, new = before.get(address), after.get(address)
        if old is None:
            out.append(SpecChange(address, "added", _created(new or {}), where.get(address, "")))
        elif new is None:
            out.append(SpecChange(address, "removed", (), where.get(address, "")))
        else:
            changes = field_changes(old, new)
            if changes:
                out.append(SpecChange(address, "changed", changes, where.get(address, "")))
    return out


def _created(material: Mapping[str, Any]) -> tuple[Change, ...]:
    return tuple(c for c in field_changes({}, material) if c.after not in ({}, []))
