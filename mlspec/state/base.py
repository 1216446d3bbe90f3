"""The state Protocol: what plan reads and what apply writes, whatever the backend.

Every write is an operation a shared database performs as one transaction: a step's row with the
registry versions and alias moves it made; an audit entry with the new head of the chain. Nothing
here rewrites a whole document, and nothing names a backend's knobs (SQLite's group commit is the
local backend's own business).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlspec.state.model import LockInfo, ResourceState, StateMeta

if TYPE_CHECKING:
    from mlspec.audit.log import AuditLog
    from mlspec.project import Project
    from mlspec.registry import Entry, RegistryWrite
    from mlspec.state.snapshot import Snapshot


class StateReader(Protocol):
    def meta(self) -> StateMeta: ...

    def get(self, address: str) -> ResourceState | None: ...

    def list(self) -> list[ResourceState]: ...

    def note(self, name: str) -> Any:
        """A JSON value kept beside the resources (`last_apply`); None when unset."""
        ...

    def registry(self) -> dict[str, Entry]:
        """Every address's registered versions, aliases and alias history."""
        ...

    def audit_head(self) -> dict[str, Any] | None:
        """Where the audit log's chain ends ({seq, hash}), as the last append left it; None before any."""
        ...

    def audit_log(self) -> AuditLog:
        """The audit chain, to read and verify (`lines`, `entries`, `verify`), wherever this backend keeps it."""
        ...


class StateStore(StateReader, Protocol):
    """Writes happen under the lock, one step at a time, each committed atomically on its own."""

    def lock(self, operation: str, *, timeout: float = 0.0) -> AbstractContextManager[LockInfo]:
        """Hold the state's lock; wait up to `timeout` seconds (with backoff), else StateLockedError."""
        ...

    def lock_info(self) -> LockInfo | None: ...

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove a lock left by a process that is gone. Only the exact lock id is accepted."""
        ...

    def commit(self, entry: ResourceState, *, registry: RegistryWrite | None = None) -> int:
        """Record one step's result atomically (this address only) with the registry versions and
        alias moves it made: a crash leaves both or neither. Returns the new serial. A record whose
        status is `interrupted` (written as a step starts) may be kept less durably by a backend
        that batches flushes: losing it with the machine loses nothing the next plan needs."""
        ...

    def register(self, write: RegistryWrite) -> None:
        """Registry changes made by hand (promote, rollback) where no resource row moves with them."""
        ...

    def append_audit(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append one entry to the audit log's chain and move its head with it; returns the new head."""
        ...

    def set_note(self, name: str, value: Any) -> None:
        """Under the lock. Notes are not resources: setting one does not move the serial."""
        ...

    def load(self, snapshot: Snapshot) -> None:
        """Become exactly `snapshot` (lineage, serial, records, registry, audit chain): a migration's
        destination, empty before; under the lock, in one transaction where the backend has them."""
        ...

    def remove(self, address: str) -> int: ...

    def move(self, source: str, destination: str) -> int: ...

    def close(self) -> None: ...


def open_state(project: Project, *, create: bool = True) -> StateStore:
    """The project's configured backend; with `create=False`, StateMissingError when there is none."""
    from mlspec.errors import StateError

    backend = project.setting("state", "backend")
    if backend == "local":
        from mlspec.state.local import LocalStateStore

        path = Path(project.setting("state", "path"))
        return LocalStateStore(path if path.is_absolute() else project.root / path, create=create,
                               audit=project.root / ".mlspec" / "audit" / "log.jsonl")
    if backend == "postgres":
        from mlspec.state.postgres import PostgresStateStore

        return PostgresStateStore(_url(project), str(project.setting("state", "key") or project.root.name),
                                  create=create)
    raise StateError(f"state backend `{backend}` is not available in this version of mlspec; use `local` or `postgres`")


def _url(project: Project) -> str:
    raw = project.setting("state", "url")
    if not raw:
        from mlspec.errors import StateError

        raise StateError("mlspec.yaml: state.backend is postgres but state.url is not set; write "
                         "`url: ${env:MLSPEC_STATE_URL}` and set that variable (a libpq URI)")
    return resolve_url(raw, "mlspec.yaml: state.url")


def resolve_url(raw: str, where: str) -> str:
    """A state URL with its `${env:NAME}` resolved, wherever it was written (mlspec.yaml, `state
    migrate --to`): a variable that is not set is an error naming it, and the password, and every
    value substituted, join the process's mask."""
    import os

    from mlspec.errors import StateError
    from mlspec.masking import ENV_REF, Mask, use

    missing = [m.group(1) for m in ENV_REF.finditer(raw) if m.group(1) not in os.environ]
    if missing:
        raise StateError(f"{where} needs the environment variable {missing[0]}, which is not set")
    url = ENV_REF.sub(lambda m: os.environ[m.group(1)], raw)
    from urllib.parse import urlsplit

    password = urlsplit(url).password if "://" in url else None
    if password:
        use(Mask([password, *(os.environ[m.group(1)] for m in ENV_REF.finditer(raw))]))
    return url
