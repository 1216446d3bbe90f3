"""An in-process state store with the local backend's semantics, for tests and dry runs."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mlspec.errors import StateError, StateLockedError
from mlspec.state.model import LockInfo, ResourceState, StateMeta, now

if TYPE_CHECKING:
    from mlspec.audit.log import AuditLog
    from mlspec.registry import Entry, RegistryWrite
    from mlspec.state.snapshot import Snapshot


class MemoryStateStore:
    def __init__(self, lineage: str | None = None) -> None:
        self._lineage = uuid.uuid4().hex if lineage is None else lineage
        self._serial = 0
        self._entries: dict[str, ResourceState] = {}
        self._notes: dict[str, Any] = {}
        self._registry: dict[str, Entry] = {}
        self.audit: list[dict[str, Any]] = []  # the audit entries appended, in order
        self._loaded: list[bytes] | None = None  # a chain loaded whole (a migration's destination)
        self._head: dict[str, Any] | None = None
        self._lock: LockInfo | None = None
        self._mutex = threading.Lock()

    def meta(self) -> StateMeta:
        return StateMeta(self._lineage, self._serial)

    def get(self, address: str) -> ResourceState | None:
        return self._entries.get(address)

    def list(self) -> list[ResourceState]:
        return [self._entries[a] for a in sorted(self._entries)]

    def note(self, name: str) -> Any:
        return self._notes.get(name)

    def set_note(self, name: str, value: Any) -> None:
        with self._mutex:
            self._require_lock()
            self._notes[name] = value

    def registry(self) -> dict[str, Entry]:
        from mlspec.registry import Entry

        return {a: Entry.from_json(e.to_json()) for a, e in sorted(self._registry.items())}

    def register(self, write: RegistryWrite) -> None:
        with self._mutex:
            self._require_lock()
            self._registry[write.address] = write.applied_to(self._registry.get(write.address))

    def audit_head(self) -> dict[str, Any] | None:
        if self._head is not None:
            return dict(self._head)
        return dict(self.audit[-1]["head"]) if self.audit else None

    def audit_log(self) -> AuditLog:
        import json

        from mlspec.audit.log import LinesLog

        lines = self._loaded if self._loaded is not None else [
            json.dumps(e, default=str).encode() + b"\n" for e in self.audit]
        return LinesLog(list(lines), "memory")

    def load(self, snapshot: Snapshot) -> None:
        with self._mutex:
            self._require_lock()
            self._lineage, self._serial = snapshot.lineage, snapshot.serial
            self._entries = {r.address: r for r in snapshot.resources}
            self._registry = dict(snapshot.registry)
            self._loaded = list(snapshot.audit)
            self._head = snapshot.audit_head
            if snapshot.last_apply is not None:
                self._notes["last_apply"] = snapshot.last_apply

    def append_audit(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        with self._mutex:
            self._require_lock()
            head = {"seq": len(self.audit) + 1, "hash": uuid.uuid4().hex}
            self.audit.append({"event": event, **fields, "head": head})
            self._head = None
            return head

    def lock_info(self) -> LockInfo | None:
        return self._lock

    @contextmanager
    def lock(self, operation: str, *, timeout: float = 0.0) -> Iterator[LockInfo]:
        mine = LockInfo.mine(operation)
        deadline = time.monotonic() + timeout
        while True:
            with self._mutex:
                if self._lock is None:
                    self._lock = mine
                    break
                holder = self._lock
            if time.monotonic() >= deadline:
                raise StateLockedError(f"the state is locked by {holder.describe()}")
            time.sleep(0.01)
        try:
            yield mine
        finally:
            with self._mutex:
                if self._lock is not None and self._lock.id == mine.id:
                    self._lock = None

    def force_unlock(self, lock_id: str) -> LockInfo:
        with self._mutex:
            if self._lock is None or self._lock.id != lock_id:
                raise StateError(f"no lock with id {lock_id}")
            info, self._lock = self._lock, None
            return info

    def commit(self, entry: ResourceState, *, registry: RegistryWrite | None = None) -> int:
        with self._mutex:
            self._require_lock()
            previous = self._entries.get(entry.address)
            created = previous.created_at if previous else entry.created_at
            self._entries[entry.address] = replace(entry, created_at=created, updated_at=now())
            if registry:
                self._registry[registry.address] = registry.applied_to(self._registry.get(registry.address))
            return self._bump()

    def remove(self, address: str) -> int:
        with self._mutex:
            self._require_lock()
            if self._entries.pop(address, None) is None:
                raise StateError(f"`{address}` is not in the state")
            return self._bump()

    def move(self, source: str, destination: str) -> int:
        with self._mutex:
            self._require_lock()
            if destination in self._entries:
                raise StateError(f"`{destination}` is already in the state")
            if source not in self._entries:
                raise StateError(f"`{source}` is not in the state")
            self._entries[destination] = replace(self._entries.pop(source), address=destination)
            return self._bump()

    def close(self) -> None:
        pass

    def _require_lock(self) -> None:
        if self._lock is None:
            raise StateError("state changes need the lock")

    def _bump(self) -> int:
        self._serial += 1
        return self._serial
