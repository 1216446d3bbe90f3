"""The shared state backend: PostgreSQL (psycopg 3), for a team whose CI runners start from fresh clones.

The same store as the local backend, operation for operation: a step's row, the registry versions and
alias moves it made and the serial bump are one transaction; the audit log's entries and its head are
rows and one transaction too, so every runner appends to one chain and `mlspec audit verify` reads it
from the database.

The lock is a session-level advisory lock held by a connection of its own: the server releases it when
that connection drops, so a CI job killed mid-apply never leaves the next one stuck (the lock's row
stays, for messages, and the next holder takes it over). Its key is namespaced by the state's `key`
(mlspec.yaml `state.key`, by default the project directory's name), so two spec repos sharing one
database never share a lock; Terraform's pg backend keys its lock by schema name alone and collides
across databases (hashicorp/terraform#33217).

The schema is mlspec's: created when first used, versioned in `mlspec_schema`, migrated forward in a
transaction under an advisory lock of its own.
"""

from __future__ import annotations

import json
import random
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlspec.audit.log import GENESIS, AuditLog, digest
from mlspec.errors import StateCorruptError, StateError, StateLockedError, StateMissingError
from mlspec.state.model import FORMAT_VERSION, LockInfo, ResourceState, StateMeta, now

if TYPE_CHECKING:
    import psycopg

    from mlspec.registry import Entry, RegistryWrite
    from mlspec.state.snapshot import Snapshot

SCHEMA_VERSION = 1
PING_S = 1.0  # how often a write checks that the connection holding the advisory lock is alive
NAMESPACE = zlib.crc32(b"mlspec.state") & 0x7FFFFFFF  # the advisory locks' first key: mlspec's, no one else's
_DDL = """
CREATE TABLE IF NOT EXISTS mlspec_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mlspec_meta (
    key TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (key, name));
CREATE TABLE IF NOT EXISTS mlspec_resources (
    key TEXT NOT NULL, address TEXT NOT NULL, fingerprint TEXT NOT NULL, spec TEXT NOT NULL, outputs TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, git_commit TEXT,
    PRIMARY KEY (key, address));
CREATE TABLE IF NOT EXISTS mlspec_lock (
    key TEXT PRIMARY KEY, id TEXT NOT NULL, operation TEXT NOT NULL, who TEXT NOT NULL, host TEXT NOT NULL,
    pid INTEGER NOT NULL, created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mlspec_registry_versions (
    key TEXT NOT NULL, address TEXT NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (key, address, version));
CREATE TABLE IF NOT EXISTS mlspec_registry_moves (
    key TEXT NOT NULL, address TEXT NOT NULL, seq INTEGER NOT NULL, move TEXT NOT NULL,
    PRIMARY KEY (key, address, seq));
CREATE TABLE IF NOT EXISTS mlspec_audit (
    key TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL, PRIMARY KEY (key, seq));
"""
_COLUMNS = "address, fingerprint, spec, outputs, status, created_at, updated_at, git_commit"
_COMMIT_ONE = f"""
WITH held AS (SELECT 1 FROM mlspec_lock WHERE key = %(key)s AND id = %(id)s FOR UPDATE),
upserted AS (
    INSERT INTO mlspec_resources (key, {_COLUMNS})
    SELECT %(key)s, %(address)s, %(fingerprint)s, %(spec)s, %(outputs)s, %(status)s, %(created_at)s,
           %(updated_at)s, %(git_commit)s WHERE EXISTS (SELECT 1 FROM held)
    ON CONFLICT (key, address) DO UPDATE SET fingerprint = excluded.fingerprint, spec = excluded.spec,
        outputs = excluded.outputs, status = excluded.status, updated_at = excluded.updated_at,
        git_commit = excluded.git_commit
    RETURNING 1)
UPDATE mlspec_meta SET value = (CAST(value AS INTEGER) + 1)::TEXT
WHERE key = %(key)s AND name = 'serial' AND EXISTS (SELECT 1 FROM upserted)
RETURNING value
"""


class PostgresStateStore:
    def __init__(self, url: str, key: str, *, create: bool = True) -> None:
        """`url`: a libpq connection string or URI (its password is a secret: never shown); `key`: this
        state's name in the database."""
        self.url = url
        self.key = key
        self._held: LockInfo | None = None
        self._lock_db: psycopg.Connection[Any] | None = None
        self._pinged = 0.0
        self._db = self._connect()
        self._migrate()
        if self._meta_row() is None:
            if not create:
                raise StateMissingError(f"no state `{key}` in the database: nothing has been applied yet")
            self._create()

    # -- opening -----------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            import psycopg
        except ImportError:
            raise StateError("state backend `postgres` needs psycopg: pip install 'mlspec[postgres]'") from None
        try:
            db = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            # Group commit, as the local store does it: a step's commit is in the server's hands when it
            # returns, on disk within a fraction of a second (the WAL writer's delay), and releasing the
            # lock flushes everything. A crash of the server can cost the last few steps, which the next
            # apply redoes; it can never leave a transaction half-written.
            db.execute("SET synchronous_commit = off")
            return db
        except psycopg.Error as err:
            from mlspec.masking import mask

            raise StateError(f"cannot connect to the state database: {mask(str(err)).strip()}") from None

    def _migrate(self) -> None:
        """Create or upgrade the schema; one query when it is current already (every other open)."""
        current = self._db.execute("SELECT to_regclass('mlspec_schema') IS NOT NULL").fetchone()
        if current and current[0]:
            row = self._db.execute("SELECT max(version) FROM mlspec_schema").fetchone()
            if row and row[0] == SCHEMA_VERSION:
                return
        with self._transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (NAMESPACE,))  # one runner creates, the others wait
            for statement in _DDL.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT max(version) FROM mlspec_schema").fetchone()
            version = row[0] if row and row[0] is not None else 0
            if version > SCHEMA_VERSION:
                raise StateCorruptError(f"the state database was written by a newer mlspec (schema {version}; this "
                                        f"one knows up to {SCHEMA_VERSION}): upgrade mlspec. Nothing was changed")
            if version < SCHEMA_VERSION:
                db.execute("INSERT INTO mlspec_schema VALUES (%s)", (SCHEMA_VERSION,))

    def _meta_row(self) -> dict[str, str] | None:
        rows = self._db.execute("SELECT name, value FROM mlspec_meta WHERE key = %s AND name NOT LIKE 'note:%%'",
                                (self.key,)).fetchall()
        return dict(rows) if rows else None

    def _create(self) -> None:
        with self._transaction() as db:
            db.execute("INSERT INTO mlspec_meta VALUES (%s, 'format_version', %s), (%s, 'lineage', %s), "
                       "(%s, 'serial', '0') ON CONFLICT DO NOTHING",
                       (self.key, str(FORMAT_VERSION), self.key, uuid.uuid4().hex, self.key))

    # -- reading -----------------------------------------------------------------------------------

    def meta(self) -> StateMeta:
        meta = self._meta_row() or {}
        return StateMeta(meta["lineage"], int(meta["serial"]), int(meta["format_version"]))

    def get(self, address: str) -> ResourceState | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM mlspec_resources WHERE key = %s AND address = %s",
                               (self.key, address)).fetchone()
        return _entry(row) if row else None

    def list(self) -> list[ResourceState]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM mlspec_resources WHERE key = %s ORDER BY address",
                                (self.key,)).fetchall()
        return [_entry(row) for row in rows]

    def note(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM mlspec_meta WHERE key = %s AND name = %s",
                               (self.key, f"note:{name}")).fetchone()
        return json.loads(row[0]) if row else None

    def registry(self) -> dict[str, Entry]:
        from mlspec.registry import from_rows

        return from_rows(
            self._db.execute("SELECT address, record FROM mlspec_registry_versions WHERE key = %s ORDER BY address, "
                             "version", (self.key,)).fetchall(),
            self._db.execute("SELECT address, move FROM mlspec_registry_moves WHERE key = %s ORDER BY address, seq",
                             (self.key,)).fetchall())

    def audit_head(self) -> dict[str, Any] | None:
        head = self.note("audit_head")
        return dict(head) if isinstance(head, dict) else None

    def audit_log(self) -> AuditLog:
        from mlspec.audit.log import LinesLog

        rows = self._db.execute("SELECT line FROM mlspec_audit WHERE key = %s ORDER BY seq", (self.key,)).fetchall()
        return LinesLog([line.encode() + b"\n" for (line,) in rows], f"postgres state `{self.key}` (mlspec_audit)")

    def lock_info(self) -> LockInfo | None:
        row = self._db.execute("SELECT id, operation, who, host, pid, created FROM mlspec_lock WHERE key = %s",
                               (self.key,)).fetchone()
        return LockInfo(*row) if row else None

    # -- locking -----------------------------------------------------------------------------------

    @contextmanager
    def lock(self, operation: str, *, timeout: float = 0.0) -> Iterator[LockInfo]:
        mine = LockInfo.mine(operation)
        deadline = time.monotonic() + timeout
        delay = 0.05
        guard = self._connect()  # the advisory lock lives as long as this connection
        key2 = zlib.crc32(self.key.encode()) - (1 << 31)
        try:
            while not _one(guard.execute("SELECT pg_try_advisory_lock(%s, %s)", (NAMESPACE, key2)).fetchone()):
                if time.monotonic() >= deadline:
                    raise _locked(self.lock_info(), timeout)
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 1.0)
            stale = self.lock_info()  # the server let its holder's lock go: that holder's connection is gone
            if stale is not None:
                import dataclasses

                mine = dataclasses.replace(mine, replaced=stale.describe(), replaced_id=stale.id)
            with self._transaction() as db:
                db.execute("DELETE FROM mlspec_lock WHERE key = %s", (self.key,))
                db.execute("INSERT INTO mlspec_lock VALUES (%s, %s, %s, %s, %s, %s, %s)",
                           (self.key, mine.id, mine.operation, mine.who, mine.host, mine.pid, mine.created))
        except BaseException:
            guard.close()
            raise
        self._held, self._lock_db = mine, guard
        try:
            yield mine
        finally:
            self._held, self._lock_db = None, None
            try:
                with self._transaction() as db:
                    db.execute("SET LOCAL synchronous_commit = on")  # this commit flushes every one before it
                    db.execute("DELETE FROM mlspec_lock WHERE key = %s AND id = %s", (self.key, mine.id))
            except StateError:
                pass  # the server is gone: the advisory lock went with our connection; the row is taken over
            finally:
                guard.close()

    def force_unlock(self, lock_id: str) -> LockInfo:
        with self._transaction() as db:
            row = db.execute("SELECT id, operation, who, host, pid, created FROM mlspec_lock WHERE key = %s "
                             "FOR UPDATE", (self.key,)).fetchone()
            if row is None:
                raise StateError("the state is not locked")
            info = LockInfo(*row)
            if info.id != lock_id:
                raise StateError(f"the lock's id is {info.id}, not {lock_id}: nothing was unlocked")
            db.execute("DELETE FROM mlspec_lock WHERE key = %s", (self.key,))
        return info

    # -- writing (under the lock) ------------------------------------------------------------------

    def commit(self, entry: ResourceState, *, registry: RegistryWrite | None = None) -> int:
        row = (self.key, entry.address, entry.fingerprint, _dumps(entry.spec), _dumps(entry.outputs),
               entry.status.value, entry.created_at, now(), entry.commit)
        if not registry:
            return self._commit_one(row)
        with self._write() as db:
            db.execute(
                f"INSERT INTO mlspec_resources (key, {_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (key, address) DO UPDATE SET fingerprint = excluded.fingerprint, spec = excluded.spec, "
                "outputs = excluded.outputs, status = excluded.status, updated_at = excluded.updated_at, "
                "git_commit = excluded.git_commit", row)
            if registry:
                self._register(db, registry)
            return self._bump(db)

    def _commit_one(self, row: tuple[Any, ...]) -> int:
        """The common step commit in one statement, so one round trip (a statement is a transaction):
        the lock's row checked, the record upserted, the serial bumped, or nothing at all."""
        import psycopg

        self._check_guard()
        try:
            names = ("address", "fingerprint", "spec", "outputs", "status", "created_at", "updated_at", "git_commit")
            params = {"key": row[0], "id": self._held.id if self._held else "",
                      **dict(zip(names, row[1:], strict=True))}
            found = self._db.execute(_COMMIT_ONE, params).fetchone()
        except psycopg.OperationalError as err:
            raise _unwritable(err) from None
        if found is None or found[0] is None:
            raise StateLockedError("the state's lock was taken from this run (force-unlock?): stopping before writing")
        return int(found[0])

    def register(self, write: RegistryWrite) -> None:
        with self._write() as db:
            self._register(db, write)

    def load(self, snapshot: Snapshot) -> None:
        from mlspec.registry import RegistryWrite

        with self._write() as db:
            for table in ("mlspec_resources", "mlspec_registry_versions", "mlspec_registry_moves", "mlspec_audit"):
                db.execute(f"DELETE FROM {table} WHERE key = %s", (self.key,))
            for r in snapshot.resources:
                db.execute(f"INSERT INTO mlspec_resources (key, {_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, "
                           "%s)", (self.key, r.address, r.fingerprint, _dumps(r.spec), _dumps(r.outputs),
                                   r.status.value, r.created_at, r.updated_at, r.commit))
            for address, entry in snapshot.registry.items():
                self._register(db, RegistryWrite(address, tuple(entry.versions), tuple(entry.history)))
            for seq, line in enumerate(snapshot.audit, 1):
                db.execute("INSERT INTO mlspec_audit VALUES (%s, %s, %s)",
                           (self.key, seq, line.decode().rstrip("\n")))
            db.execute("UPDATE mlspec_meta SET value = %s WHERE key = %s AND name = 'lineage'",
                       (snapshot.lineage, self.key))
            db.execute("UPDATE mlspec_meta SET value = %s WHERE key = %s AND name = 'serial'",
                       (str(snapshot.serial), self.key))
            for name, value in (("audit_head", snapshot.audit_head), ("last_apply", snapshot.last_apply)):
                if value is not None:
                    db.execute("INSERT INTO mlspec_meta VALUES (%s, %s, %s) ON CONFLICT (key, name) DO UPDATE SET "
                               "value = excluded.value", (self.key, f"note:{name}", _dumps(value)))

    def append_audit(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The chain in one table: the last line read under a row lock, the next appended, the head
        moved, in one transaction; two runners can never fork it."""
        with self._write() as db:
            last = db.execute("SELECT seq, line FROM mlspec_audit WHERE key = %s ORDER BY seq DESC LIMIT 1 "
                              "FOR UPDATE", (self.key,)).fetchone()
            seq, prev = (1, GENESIS) if last is None else (int(last[0]) + 1, digest(last[1].encode()))
            entry = {"seq": seq, "at": now(), "event": event, **fields, "prev": prev}
            line = json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
            db.execute("INSERT INTO mlspec_audit VALUES (%s, %s, %s)", (self.key, seq, line))
            head = {"seq": seq, "hash": digest(line.encode())}
            db.execute("INSERT INTO mlspec_meta VALUES (%s, 'note:audit_head', %s) ON CONFLICT (key, name) "
                       "DO UPDATE SET value = excluded.value", (self.key, _dumps(head)))
        return head

    def set_note(self, name: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT INTO mlspec_meta VALUES (%s, %s, %s) ON CONFLICT (key, name) DO UPDATE SET "
                       "value = excluded.value", (self.key, f"note:{name}", _dumps(value)))

    def remove(self, address: str) -> int:
        with self._write() as db:
            if db.execute("DELETE FROM mlspec_resources WHERE key = %s AND address = %s",
                          (self.key, address)).rowcount == 0:
                raise StateError(f"`{address}` is not in the state")
            return self._bump(db)

    def move(self, source: str, destination: str) -> int:
        with self._write() as db:
            if db.execute("SELECT 1 FROM mlspec_resources WHERE key = %s AND address = %s",
                          (self.key, destination)).fetchone():
                raise StateError(f"`{destination}` is already in the state")
            if db.execute("UPDATE mlspec_resources SET address = %s WHERE key = %s AND address = %s",
                          (destination, self.key, source)).rowcount == 0:
                raise StateError(f"`{source}` is not in the state")
            return self._bump(db)

    def close(self) -> None:
        self._db.close()

    def _register(self, db: psycopg.Connection[Any], write: RegistryWrite) -> None:
        for record in write.versions:
            db.execute("INSERT INTO mlspec_registry_versions VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                       (self.key, write.address, int(record["version"]), _dumps(record)))
        if write.moves:
            row = db.execute("SELECT coalesce(max(seq), 0) FROM mlspec_registry_moves WHERE key = %s AND "
                             "address = %s", (self.key, write.address)).fetchone()
            for seq, move in enumerate(write.moves, int(_one(row)) + 1):
                db.execute("INSERT INTO mlspec_registry_moves VALUES (%s, %s, %s, %s)",
                           (self.key, write.address, seq, _dumps(move)))

    def _bump(self, db: psycopg.Connection[Any]) -> int:
        row = db.execute("UPDATE mlspec_meta SET value = (CAST(value AS INTEGER) + 1)::TEXT WHERE key = %s AND "
                         "name = 'serial' RETURNING value", (self.key,)).fetchone()
        return int(_one(row))

    @contextmanager
    def _write(self) -> Iterator[psycopg.Connection[Any]]:
        self._check_guard()
        with self._transaction() as db:
            row = db.execute("SELECT id FROM mlspec_lock WHERE key = %s FOR UPDATE", (self.key,)).fetchone()
            if row is None or self._held is None or row[0] != self._held.id:
                raise StateLockedError("the state's lock was taken from this run (force-unlock?): stopping before "
                                       "writing")
            yield db

    def _check_guard(self) -> None:
        if self._held is None or self._lock_db is None:
            raise StateError("state changes need the lock (internal error: write outside `lock()`)")
        if time.monotonic() - self._pinged > PING_S:
            try:
                self._lock_db.execute("SELECT 1")  # the connection holding the advisory lock is still there
            except Exception:
                raise StateLockedError("the connection that held the state's lock dropped (the database "
                                       "restarted?): stopping before writing; apply again") from None
            self._pinged = time.monotonic()
        if self._lock_db.closed or self._lock_db.broken:
            raise StateLockedError("the connection that held the state's lock dropped (the database restarted?): "
                                   "stopping before writing; apply again")

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction. A connection the server dropped (a restart) is reopened before the next one;
        what cannot be written is a StateError, with nothing of the transaction kept."""
        import psycopg

        if self._db.closed or self._db.broken:
            self._db = self._connect()
        try:
            with self._db.transaction():
                yield self._db
        except psycopg.OperationalError as err:
            raise _unwritable(err) from None


def _entry(row: tuple[Any, ...]) -> ResourceState:
    return ResourceState.from_row(row)


def _unwritable(err: Exception) -> StateError:
    from mlspec.masking import mask

    return StateError(f"cannot write the state database: {mask(str(err)).strip()}; nothing of this change was "
                      "recorded (apply again: every step that ended is in state)")


def _one(row: Any) -> Any:
    if row is None:
        raise StateCorruptError("the state database lacks a row mlspec wrote (its meta or lock): restore it")
    return row[0]


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _locked(holder: LockInfo | None, timeout: float) -> StateLockedError:
    waited = f" after waiting {timeout:g}s" if timeout else ""
    who = holder.describe() if holder is not None else "another mlspec run"
    return StateLockedError(f"the state is locked{waited} by {who}; wait for it, or pass --lock-timeout to wait "
                            "longer")
