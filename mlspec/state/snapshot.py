"""A whole state as one value, to move it between backends (`mlspec state migrate --to`).

What makes a state that state travels with it: its lineage and serial (a saved plan made against the
old backend still applies, or is refused, exactly as before), every resource's record, the registry
(versions and alias moves, in order), the audit chain with its head, and the last apply's provenance.
The copy is verified by taking the destination's snapshot and comparing it with the source's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.errors import StateError

if TYPE_CHECKING:
    from mlspec.registry import Entry
    from mlspec.state.base import StateReader, StateStore
    from mlspec.state.model import ResourceState


@dataclass
class Snapshot:
    lineage: str
    serial: int
    resources: list[ResourceState] = field(default_factory=list)
    registry: dict[str, Entry] = field(default_factory=dict)
    audit: list[bytes] = field(default_factory=list)  # the chain's lines, in order
    audit_head: dict[str, Any] | None = None
    last_apply: Any = None

    def to_json(self) -> dict[str, Any]:
        """For comparing two snapshots: timestamps kept, nothing left out."""
        return {"lineage": self.lineage, "serial": self.serial,
                "resources": [r.to_json() for r in self.resources],
                "registry": {a: e.to_json() for a, e in sorted(self.registry.items())},
                "audit": [line.decode() for line in self.audit], "audit_head": self.audit_head,
                "last_apply": self.last_apply}


def take(store: StateReader) -> Snapshot:
    meta = store.meta()
    return Snapshot(meta.lineage, meta.serial, store.list(), store.registry(),
                    [line for _, line in store.audit_log().lines()], store.audit_head(), store.note("last_apply"))


def copy(source: StateReader, destination: StateStore) -> Snapshot:
    """Copy `source` into an empty `destination` (whose lock the caller holds), then check the copy."""
    current = destination.meta()
    if current.serial or destination.list() or destination.registry():
        raise StateError(f"the destination holds a state already (lineage {current.lineage[:12]}, serial "
                         f"{current.serial}): migrate into an empty one")
    found = take(source)
    destination.load(found)
    landed = take(destination)
    if landed.to_json() != found.to_json():
        differs = sorted(k for k, v in found.to_json().items() if landed.to_json().get(k) != v)
        raise StateError(f"the copy does not match its source ({', '.join(differs)} differ): the source is "
                         "untouched; clear the destination and migrate again")
    return found
