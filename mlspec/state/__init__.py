"""State: what mlspec last did to the live world, per address (Terraform's state, DVC's lock file).

`StateReader` is what plan needs; `StateStore` adds the lock and per-step commits that apply needs.
Backends: `local` (SQLite in WAL mode under .mlspec/, the default) and `memory` (tests); a shared
backend (PostgreSQL) implements the same Protocol.
"""

from __future__ import annotations

from mlspec.state.base import StateReader, StateStore, open_state
from mlspec.state.model import LockInfo, ResourceState, StateMeta, Status

__all__ = ["LockInfo", "ResourceState", "StateMeta", "StateReader", "StateStore", "Status", "open_state"]
