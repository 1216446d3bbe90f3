"""The records of state: one per address, the store's meta (lineage, serial), and the lock holder."""

from __future__ import annotations

import enum
import os
import socket
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMAT_VERSION = 2  # 2: the registry as versions and alias moves, not one document


class Status(enum.StrEnum):
    APPLIED = "applied"
    TAINTED = "tainted"  # its last apply failed: the next plan replaces it
    INTERRUPTED = "interrupted"  # the process stopped mid-step: the next plan redoes it


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class ResourceState:
    address: str
    fingerprint: str
    spec: dict[str, Any]  # as written: `${env:NAME}` stays symbolic, so no secret is ever stored
    outputs: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.APPLIED
    created_at: str = field(default_factory=now)
    updated_at: str = field(default_factory=now)
    commit: str | None = None  # the git commit it was applied from

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ResourceState:
        """A backend's row (address, fingerprint, spec JSON, outputs JSON, status, created, updated,
        commit); a damaged one is a StateCorruptError that says how to drop just it."""
        import json

        from mlspec.errors import StateCorruptError

        address, fingerprint, spec, outputs, status, created, updated, commit = row
        try:
            return cls(address, fingerprint, json.loads(spec), json.loads(outputs), Status(status),
                       created, updated, commit)
        except (ValueError, TypeError) as err:
            raise StateCorruptError(f"the state's record of {address} is damaged ({type(err).__name__}: {err}); the "
                                    f"rest is intact: `mlspec state rm {address}` forgets it, and the next apply "
                                    "makes it anew") from None


@dataclass(frozen=True, slots=True)
class StateMeta:
    lineage: str  # fixed at creation: a plan made against another state is refused
    serial: int  # +1 on every change: a plan made against an older serial is refused
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True, slots=True)
class LockInfo:
    id: str
    operation: str
    who: str
    host: str
    pid: int
    created: str
    replaced: str | None = None  # the holder whose lock this one took over: it died holding it
    replaced_id: str | None = None

    @classmethod
    def mine(cls, operation: str, who: str | None = None) -> LockInfo:
        return cls(uuid.uuid4().hex[:12], operation, who or _who(), socket.gethostname(), os.getpid(), now())

    def holder_gone(self) -> bool:
        """True when the holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False  # cannot tell from here
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # exists, owned by someone else
        return False

    def describe(self) -> str:
        return f"{self.id} ({self.operation} by {self.who} on {self.host}, pid {self.pid}, since {self.created})"


def _who() -> str:
    for variable in ("MLSPEC_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER", "USERNAME"):
        if os.environ.get(variable):
            return os.environ[variable]
    return "unknown"
