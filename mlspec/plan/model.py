"""The plan: what apply will do, step by step, and why. Frozen, and round-trips JSON so that
`mlspec apply plan.json` carries out exactly what was reviewed."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = "1"
SENSITIVE = "(sensitive)"


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"  # in place: state only, nothing recomputed (owner, labels, description)
    REPLACE = "replace"  # recompute / recreate
    DELETE = "delete"
    NOOP = "noop"

    @property
    def is_change(self) -> bool:
        return self is not Action.NOOP

    @property
    def past(self) -> str:
        return {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
                "noop": "unchanged"}[self.value]


@dataclass(frozen=True, slots=True)
class Change:
    path: str  # `spec.hyperparameters.learning_rate`
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class Step:
    address: str
    action: Action
    causes: tuple[str, ...]  # outermost first: "Model/sentiment will be replaced", "spec changed: ..."
    changes: tuple[Change, ...] = ()
    fingerprint: str | None = None  # the data fingerprint after apply (None for delete)

    def explain(self) -> str:
        """`replace Service/api  because Model/m will be replaced  because spec changed: ...`"""
        return "  ".join([f"{self.action.value} {self.address}", *(f"because {c}" for c in self.causes)])


@dataclass(frozen=True, slots=True)
class Plan:
    lineage: str
    serial: int  # the state this plan was made against: apply refuses it if state moved since
    steps: tuple[Step, ...]
    orphans: tuple[str, ...] = ()  # in state, no longer in specs, kept (no prune)
    format_version: str = FORMAT_VERSION

    @property
    def has_changes(self) -> bool:
        return any(step.action.is_change for step in self.steps)

    def counts(self) -> dict[str, int]:
        out = {action.value: 0 for action in Action}
        for step in self.steps:
            out[step.action.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "orphans": list(self.orphans),
            "steps": [
                {"address": s.address, "action": s.action.value, "causes": list(s.causes), "fingerprint": s.fingerprint,
                 "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in s.changes]}
                for s in self.steps
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if data.get("format_version") != FORMAT_VERSION:
            from mlspec.errors import MlspecError

            found = data.get("format_version")
            raise MlspecError(f"plan format {found!r} is not {FORMAT_VERSION!r}: make the plan again")
        return cls(
            data["lineage"],
            int(data["serial"]),
            tuple(
                Step(s["address"], Action(s["action"]), tuple(s["causes"]),
                     tuple(Change(c["path"], c["before"], c["after"]) for c in s["changes"]), s["fingerprint"])
                for s in data["steps"]
            ),
            tuple(data.get("orphans", ())),
        )
