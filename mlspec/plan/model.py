"""The plan: what apply will do, step by step, and why. Frozen, and round-trips JSON so that
`mlspec apply plan.json` carries out exactly what was reviewed."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

FORMAT_VERSION = "2"  # 2: steps carry `replace_order` and `conditional_on`
SENSITIVE = "(sensitive)"


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"  # in place: state only, nothing recomputed (owner, labels, description)
    REPLACE = "replace"  # recompute / recreate
    DELETE = "delete"
    READ = "read"  # --refresh-only: accept what refresh found into state; nothing in the world changes
    NOOP = "noop"

    @property
    def is_change(self) -> bool:
        return self is not Action.NOOP

    @property
    def past(self) -> str:
        return {"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted",
                "read": "read", "noop": "unchanged"}[self.value]

    @property
    def symbol(self) -> str:
        """Terraform's: `+` create, `~` update, `-/+` replace, `-` delete, `<=` read."""
        return {"create": "+", "update": "~", "replace": "-/+", "delete": "-", "read": "<=", "noop": " "}[self.value]


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
    estimate: dict[str, Any] | None = None  # seconds, gpu_hours, cost, basis: from the plugin
    observed: dict[str, Any] | None = None  # read: the outputs refresh found (None: the object is gone)
    # A replace of an object that exists: how it is carried out ("create_before_destroy": no downtime).
    replace_order: str | None = None
    # Planned only because these upstreams recompute: if each comes out with the same published
    # content as state holds, this step is cut off (not run, its outputs kept). Empty: it runs.
    conditional_on: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what a reviewer must know beyond the changes ("gets the secret TOKEN")
    # A conditional step's fingerprint if it is cut off: made with what its upstreams hand on once
    # they are cut off themselves (an upstream with a champion keeps publishing that champion's).
    cutoff_fingerprint: str | None = None

    @property
    def is_conditional(self) -> bool:
        return bool(self.conditional_on)

    def explain(self) -> str:
        """`replace Service/api  because Model/m will be replaced  because spec changed: ...`"""
        return "  ".join([f"{self.action.value} {self.address}", *(f"because {c}" for c in self.causes)])


@dataclass(frozen=True, slots=True)
class Plan:
    lineage: str
    serial: int  # the state this plan was made against: apply refuses it if state moved since
    steps: tuple[Step, ...]
    orphans: tuple[str, ...] = ()  # in state, no longer in specs, kept (no prune)
    unmanaged: tuple[tuple[str, str], ...] = ()  # (address, why): no installed plugin manages it
    options: dict[str, Any] | None = None  # targets, replace, refresh_only: how the plan was made
    format_version: str = FORMAT_VERSION

    @property
    def has_changes(self) -> bool:
        return any(step.action.is_change for step in self.steps)

    def counts(self) -> dict[str, int]:
        out = {action.value: 0 for action in Action}
        for step in self.steps:
            out[step.action.value] += 1
        return out

    def estimated(self) -> dict[str, float]:
        """Sums over the changing steps of what their plugins estimated (absent when none did)."""
        out: dict[str, float] = {}
        for step in self.steps:
            for key in ("seconds", "gpu_hours", "cost"):
                value = (step.estimate or {}).get(key)
                if step.action.is_change and value is not None:
                    out[key] = out.get(key, 0.0) + float(value)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "lineage": self.lineage,
            "serial": self.serial,
            "has_changes": self.has_changes,
            "summary": self.counts(),
            "estimated": self.estimated(),
            "options": self.options or {},
            "orphans": list(self.orphans),
            "unmanaged": [{"address": a, "why": why} for a, why in self.unmanaged],
            "steps": [
                {"address": s.address, "action": s.action.value, "causes": list(s.causes), "fingerprint": s.fingerprint,
                 "changes": [{"path": c.path, "before": c.before, "after": c.after} for c in s.changes],
                 "estimate": s.estimate, "replace_order": s.replace_order, "conditional_on": list(s.conditional_on),
                 "notes": list(s.notes), "cutoff_fingerprint": s.cutoff_fingerprint,
                 **({"observed": s.observed} if s.action is Action.READ else {})}
                for s in self.steps
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        if data.get("format_version") != FORMAT_VERSION:
            from mlspec.errors import StalePlanError

            found = data.get("format_version")
            raise StalePlanError(f"plan format {found!r} is not {FORMAT_VERSION!r}: make the plan again")
        return cls(
            data["lineage"],
            int(data["serial"]),
            tuple(
                Step(s["address"], Action(s["action"]), tuple(s["causes"]),
                     tuple(Change(c["path"], c["before"], c["after"]) for c in s["changes"]), s["fingerprint"],
                     s.get("estimate"), s.get("observed"), s.get("replace_order"),
                     tuple(s.get("conditional_on") or ()), tuple(s.get("notes") or ()), s.get("cutoff_fingerprint"))
                for s in data["steps"]
            ),
            tuple(data.get("orphans", ())),
            tuple((u["address"], u["why"]) for u in data.get("unmanaged", ())),
            data.get("options") or None,
        )
