"""The state Protocol: what plan reads and what apply writes, whatever the backend."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlspec.state.model import LockInfo, ResourceState, StateMeta

if TYPE_CHECKING:
    from mlspec.project import Project


class StateReader(Protocol):
    def meta(self) -> StateMeta: ...

    def get(self, address: str) -> ResourceState | None: ...

    def list(self) -> list[ResourceState]: ...

    def note(self, name: str) -> Any:
        """A JSON value kept beside the resources (`last_apply`, `audit_head`); None when unset."""
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

    def commit(self, entry: ResourceState, *, durable: bool = True, notes: Mapping[str, Any] | None = None) -> int:
        """Record one step's result atomically (this address only); returns the new serial.

        `durable=False` may skip the flush to disk (a record that survives a crash of the process
        but perhaps not of the machine): for the "interrupted" marker written as a step starts.
        `notes` are set in the same transaction (the model registry beside the Model's row): a crash
        leaves both or neither.
        """
        ...

    def set_note(self, name: str, value: Any) -> None:
        """Under the lock. Notes are not resources: setting one does not move the serial."""
        ...

    def sync(self) -> None:
        """Put commits that waited long enough on disk (a no-op where every commit already is)."""
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
        return LocalStateStore(path if path.is_absolute() else project.root / path, create=create)
    raise StateError(f"state backend `{backend}` is not available in this version of mlspec; use `local`")

