"""The embedded state backend: one SQLite database in WAL mode under the spec repo's .mlspec/.

Why SQLite: a step's result is one row written in one short transaction, so committing a step costs
the same on the thousandth step as on the first and never rewrites the store (Terraform's JSON state
is rewritten whole on every change). The lock is a row too, taken in the same kind of transaction,
so two `mlspec apply` runs on one machine or on a shared filesystem cannot both hold it.

Durability, like a database's group commit: every commit is in the operating system's hands when it
returns, so a killed or crashed mlspec (kill -9, Ctrl-C, an exception) loses nothing. A flush to the
disk itself (fsync, ~1 ms here) happens at most every SYNC_INTERVAL_S and always when the lock is
released, so a power loss can cost at most that last fraction of a second of steps, which the next
apply redoes (steps are idempotent). Flushing every commit would cap apply at ~1,000 steps a second.

A file that is not an mlspec state, or one written by a newer format, is reported and never
touched: nothing here writes to a database before it has been recognised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.errors import StateCorruptError, StateError, StateLockedError, StateMissingError
from mlspec.state.model import FORMAT_VERSION, LockInfo, ResourceState, StateMeta, Status, now

if TYPE_CHECKING:
    from mlspec.audit.log import AuditLog
    from mlspec.registry import Entry, RegistryWrite
    from mlspec.state.snapshot import Snapshot

_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE resources (
    address TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, spec TEXT NOT NULL, outputs TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, git_commit TEXT
);
CREATE TABLE lock (
    slot INTEGER PRIMARY KEY CHECK (slot = 1), id TEXT NOT NULL, operation TEXT NOT NULL, who TEXT NOT NULL,
    host TEXT NOT NULL, pid INTEGER NOT NULL, created TEXT NOT NULL
);
CREATE TABLE registry_versions (
    address TEXT NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (address, version)
);
CREATE TABLE registry_moves (
    address TEXT NOT NULL, seq INTEGER NOT NULL, move TEXT NOT NULL, PRIMARY KEY (address, seq)
);
"""
SYNC_INTERVAL_S = 0.5  # the most a power loss can cost: steps committed since the last flush
_COLUMNS = "address, fingerprint, spec, outputs, status, created_at, updated_at, git_commit"
_UPSERT = f"""
INSERT INTO resources ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (address) DO UPDATE SET fingerprint = excluded.fingerprint, spec = excluded.spec,
    outputs = excluded.outputs, status = excluded.status, updated_at = excluded.updated_at,
    git_commit = excluded.git_commit
"""


class LocalStateStore:
    def __init__(self, path: Path, *, create: bool = True, audit: Path | None = None) -> None:
        """`audit`: the audit log's file (default: `audit/log.jsonl` beside the state's directory)."""
        self.path = path
        self.audit_path = audit if audit is not None else path.parent / "audit" / "log.jsonl"
        self._create_missing = create
        self._held: LockInfo | None = None
        self._db = self._connect()
        self._full = True  # the connection starts with synchronous=FULL
        self._unsynced_since: float | None = None  # when the oldest commit not yet on disk was made
        self._flusher: threading.Timer | None = None

    # -- opening -----------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            if self._blank():
                self._refuse_if_lost()
                if not self._create_missing:
                    raise StateMissingError(f"no state at {self.path}: nothing has been applied yet")
                self._create_once()
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self._recognise(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            _upgrade(db)
        except sqlite3.DatabaseError as err:
            raise StateCorruptError(
                f"{self.path} is not a readable mlspec state ({err}); it was left untouched: "
                "restore it from a backup, or move it aside to start a new state"
            ) from err
        return db

    def _refuse_if_lost(self) -> None:
        """No state, but an audit log that records applies: the state was lost (truncated, deleted,
        its tables dropped), not never made. Starting afresh would plan to recreate everything and
        forget the registry: refused, with what to do."""
        try:
            size = self.audit_path.stat().st_size
        except OSError:
            return
        if size == 0:
            return
        raise StateCorruptError(
            f"{self.path} is missing or empty, but {self.audit_path} records applies made with it: the state was "
            "lost, and a new one would recreate everything and forget the registry. Restore the state from a backup "
            f"(nothing was written), or, to start over on purpose, move {self.audit_path} aside"
        )

    def _blank(self) -> bool:
        """No state yet: no file, an empty one, or a SQLite file with no tables at all (a creation that
        was interrupted before the atomic rename existed). Such a file holds nothing to lose."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return True
        probe = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            return bool(probe.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0)
        except sqlite3.DatabaseError:
            return False  # not ours to judge here: _recognise reports it, untouched
        finally:
            probe.close()

    def _create_once(self) -> None:
        """Two runs starting together on a repo without state must not both create one (the second
        rename would replace a state the first is already writing): creation is serialised by a lock
        file, and whoever gets it second finds a state and opens it."""
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(f".{self.path.name}.create-lock"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            if self._blank():
                self._create_atomically()

    def _create_atomically(self) -> None:
        """Build the new state beside its place and rename it in: a kill at any moment leaves no file
        or a whole state, never a half-made one that later runs would refuse."""
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.creating")
        tmp.unlink(missing_ok=True)
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to rename
            self._create(db)
        finally:
            db.close()
        for leftover in (self.path.with_name(self.path.name + "-wal"), self.path.with_name(self.path.name + "-shm")):
            leftover.unlink(missing_ok=True)  # of an empty file's aborted creation: nothing in them
        os.replace(tmp, self.path)

    def _recognise(self, db: sqlite3.Connection) -> None:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not {"meta", "resources", "lock"} <= tables:  # (format 1 had no registry tables)
            raise StateCorruptError(
                f"{self.path} is a SQLite database but not an mlspec state (tables: {', '.join(sorted(tables))}); "
                "it was left untouched"
            )
        meta = dict(db.execute("SELECT name, value FROM meta"))
        version = int(meta.get("format_version", "0") or 0)
        if version > FORMAT_VERSION:
            raise StateCorruptError(
                f"{self.path} was written by a newer mlspec (state format {version}; this one reads up to "
                f"{FORMAT_VERSION}); upgrade mlspec. The state was left untouched"
            )
        if version < 1 or "lineage" not in meta or "serial" not in meta:
            raise StateCorruptError(f"{self.path} has no valid lineage/serial; it was left untouched")

    def _create(self, db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")  # (executescript would commit it: one statement at a time)
        _create_tables(db)
        db.execute(
            "INSERT OR IGNORE INTO meta VALUES ('format_version', ?), ('lineage', ?), ('serial', '0')",
            (str(FORMAT_VERSION), uuid.uuid4().hex),
        )
        db.execute("COMMIT")

    # -- reading -----------------------------------------------------------------------------------

    def meta(self) -> StateMeta:
        meta = dict(self._db.execute("SELECT name, value FROM meta WHERE name NOT LIKE 'note:%'"))
        return StateMeta(meta["lineage"], int(meta["serial"]), int(meta["format_version"]))

    def get(self, address: str) -> ResourceState | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM resources WHERE address = ?", (address,)).fetchone()
        return _entry(row) if row else None

    def list(self) -> list[ResourceState]:
        return [_entry(row) for row in self._db.execute(f"SELECT {_COLUMNS} FROM resources ORDER BY address")]

    def note(self, name: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (f"note:{name}",)).fetchone()
        return json.loads(row[0]) if row else None

    def registry(self) -> dict[str, Entry]:
        from mlspec.registry import from_rows

        return from_rows(self._db.execute("SELECT address, record FROM registry_versions ORDER BY address, version"),
                         self._db.execute("SELECT address, move FROM registry_moves ORDER BY address, seq"))

    def audit_head(self) -> dict[str, Any] | None:
        head = self.note("audit_head")
        return dict(head) if isinstance(head, dict) else None

    def audit_log(self) -> AuditLog:
        from mlspec.audit.log import AuditLog

        return AuditLog.at(self.audit_path)

    def lock_info(self) -> LockInfo | None:
        row = self._db.execute("SELECT id, operation, who, host, pid, created FROM lock").fetchone()
        return LockInfo(*row) if row else None

    # -- locking -----------------------------------------------------------------------------------

    @contextmanager
    def lock(self, operation: str, *, timeout: float = 0.0) -> Iterator[LockInfo]:
        """The lock is two things: an OS lock (flock) on `state.db.lock`, which the kernel releases when
        its holder dies however it dies, and a row naming the holder, for messages. Whoever gets the OS
        lock while a row from this host is still there knows its holder is gone and takes the lock
        over (Terraform's local backend does the same with its .terraform.tfstate.lock.info): a
        killed CI job never leaves the next one stuck. A row from another host sharing the state on a
        network filesystem cannot be judged from here: that one still needs `force-unlock`."""
        mine = LockInfo.mine(operation)
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            guard = self._os_lock()
            try:
                holder = self._try_lock(mine) if guard is not None else self.lock_info()
                if guard is not None and holder is not None and holder.host == mine.host:
                    mine = self._take_over(mine, holder)
                    holder = None
            except BaseException:
                if guard is not None:
                    os.close(guard)
                raise
            if holder is None and guard is not None:
                break
            if guard is not None:
                os.close(guard)
            if time.monotonic() >= deadline:
                raise _locked(holder, timeout)
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.8, 1.2))
            delay = min(delay * 2, 1.0)
        assert guard is not None
        self._held = mine
        try:
            yield mine
        finally:
            self._held = None
            try:
                self._sync_mode(True)  # releasing the lock flushes every commit made under it
                with self._transaction() as db:
                    db.execute("DELETE FROM lock WHERE id = ?", (mine.id,))
            except sqlite3.Error:
                pass  # a full disk: the row stays, and the OS lock below goes with us; the next run takes over
            finally:
                os.close(guard)

    def _os_lock(self) -> int | None:
        """The OS lock's file descriptor, or None while another live process holds it."""
        import fcntl

        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        return fd

    def _take_over(self, mine: LockInfo, stale: LockInfo) -> LockInfo:
        """Replace the row of a holder that died without releasing it; say whose it was."""
        taken = dataclasses.replace(mine, replaced=stale.describe(), replaced_id=stale.id)
        with self._transaction() as db:
            db.execute("DELETE FROM lock WHERE id = ?", (stale.id,))
            db.execute("INSERT INTO lock VALUES (1, ?, ?, ?, ?, ?, ?)",
                       (taken.id, taken.operation, taken.who, taken.host, taken.pid, taken.created))
        return taken

    def _try_lock(self, mine: LockInfo) -> LockInfo | None:
        """Take the lock, or return who holds it."""
        with self._transaction() as db:
            holder = db.execute("SELECT id, operation, who, host, pid, created FROM lock").fetchone()
            if holder is not None:
                return LockInfo(*holder)
            db.execute(
                "INSERT INTO lock VALUES (1, ?, ?, ?, ?, ?, ?)",
                (mine.id, mine.operation, mine.who, mine.host, mine.pid, mine.created),
            )
        return None

    def force_unlock(self, lock_id: str) -> LockInfo:
        with self._transaction() as db:
            holder = db.execute("SELECT id, operation, who, host, pid, created FROM lock").fetchone()
            if holder is None:
                raise StateError("the state is not locked")
            info = LockInfo(*holder)
            if info.id != lock_id:
                raise StateError(f"the lock's id is {info.id}, not {lock_id}: nothing was unlocked")
            db.execute("DELETE FROM lock WHERE id = ?", (lock_id,))
        return info

    # -- writing (under the lock) ------------------------------------------------------------------

    def commit(self, entry: ResourceState, *, registry: RegistryWrite | None = None) -> int:
        # In WAL mode, synchronous=NORMAL commits survive a crash of the process but may be lost with
        # the machine; FULL flushes the log, and with it every commit before, to the disk. The
        # "interrupted" marker of a step that starts is never worth a flush of its own.
        durable = entry.status is not Status.INTERRUPTED
        self._sync_mode(durable and self._unsynced_since is not None
                        and time.monotonic() - self._unsynced_since >= SYNC_INTERVAL_S)
        row = (entry.address, entry.fingerprint, _dumps(entry.spec), _dumps(entry.outputs), entry.status.value,
               entry.created_at, now(), entry.commit)
        with self._write() as db:
            db.execute(_UPSERT, row)  # an existing row keeps its created_at
            if registry:
                _register(db, registry)
            serial = _bump(db)
        if self._full:
            self._unsynced_since = None  # this commit's fsync covered every commit before it
        elif durable and self._unsynced_since is None:
            self._unsynced_since = time.monotonic()
            self._flush_later()
        return serial

    def load(self, snapshot: Snapshot) -> None:
        """The audit chain's file first (whole, renamed into place), then every row in one transaction."""
        from mlspec.registry import RegistryWrite

        self._sync_mode(True)
        if snapshot.audit:
            self.audit_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.audit_path.with_name(f".{self.audit_path.name}.{os.getpid()}.loading")
            tmp.write_bytes(b"".join(snapshot.audit))
            os.replace(tmp, self.audit_path)
        with self._write() as db:
            for table in ("resources", "registry_versions", "registry_moves"):
                db.execute(f"DELETE FROM {table}")
            for r in snapshot.resources:
                db.execute(f"INSERT INTO resources ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (r.address, r.fingerprint, _dumps(r.spec), _dumps(r.outputs), r.status.value,
                            r.created_at, r.updated_at, r.commit))
            for address, entry in snapshot.registry.items():
                _register(db, RegistryWrite(address, tuple(entry.versions), tuple(entry.history)))
            db.execute("UPDATE meta SET value = ? WHERE name = 'lineage'", (snapshot.lineage,))
            db.execute("UPDATE meta SET value = ? WHERE name = 'serial'", (str(snapshot.serial),))
            for name, value in (("audit_head", snapshot.audit_head), ("last_apply", snapshot.last_apply)):
                if value is not None:
                    db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"note:{name}", _dumps(value)))

    def register(self, write: RegistryWrite) -> None:
        self._sync_mode(True)
        with self._write() as db:
            _register(db, write)

    def append_audit(self, event: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The log is a file of hash-chained lines (mlspec/audit/log.py); its head is kept here, written
        after the line is on disk, so a crash between the two is seen and repaired by the next append."""
        from mlspec.audit.log import AuditLog

        head = AuditLog.at(self.audit_path).append(event, dict(fields), head=self.audit_head())
        self.set_note("audit_head", head)
        return head

    def _flush_later(self) -> None:
        """Put the batched commits on disk within SYNC_INTERVAL_S even if no other commit comes (a long
        step is running): a checkpoint from a connection of its own, so no thread shares ours."""
        if self._flusher is not None and self._flusher.is_alive():
            return

        def flush() -> None:
            try:
                other = sqlite3.connect(self.path, timeout=5)
                try:
                    other.execute("PRAGMA wal_checkpoint(PASSIVE)")  # syncs the log, then writes it back
                finally:
                    other.close()
            except sqlite3.Error:
                return
            self._unsynced_since = None

        self._flusher = threading.Timer(SYNC_INTERVAL_S, flush)
        self._flusher.daemon = True
        self._flusher.start()

    def _sync_mode(self, full: bool) -> None:
        if full != self._full:
            self._db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    def set_note(self, name: str, value: Any) -> None:
        self._sync_mode(True)
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"note:{name}", _dumps(value)))

    def remove(self, address: str) -> int:
        with self._write() as db:
            if db.execute("DELETE FROM resources WHERE address = ?", (address,)).rowcount == 0:
                raise StateError(f"`{address}` is not in the state")
            return _bump(db)

    def move(self, source: str, destination: str) -> int:
        with self._write() as db:
            if db.execute("SELECT 1 FROM resources WHERE address = ?", (destination,)).fetchone():
                raise StateError(f"`{destination}` is already in the state")
            if db.execute("UPDATE resources SET address = ? WHERE address = ?", (destination, source)).rowcount == 0:
                raise StateError(f"`{source}` is not in the state")
            return _bump(db)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._held is None:
            raise StateError("state changes need the lock (internal error: write outside `lock()`)")
        with self._transaction() as db:
            row = db.execute("SELECT id FROM lock").fetchone()
            if row is None or row[0] != self._held.id:
                raise StateLockedError(
                    "the state's lock was taken from this run (force-unlock?): stopping before writing"
                )
            yield db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a write the disk refuses (full, read-only, gone) is a StateError that
        names the file, with nothing of the transaction kept, never an internal error."""
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.OperationalError as err:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise StateError(f"cannot write the state {self.path}: {err}; nothing of this change was recorded "
                             "(free some disk space and apply again: every step that ended is in state)") from err

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        self._db.close()


def _register(db: sqlite3.Connection, write: RegistryWrite) -> None:
    for record in write.versions:
        db.execute("INSERT OR REPLACE INTO registry_versions VALUES (?, ?, ?)",
                   (write.address, int(record["version"]), _dumps(record)))
    if write.moves:
        row = db.execute("SELECT coalesce(max(seq), 0) FROM registry_moves WHERE address = ?",
                         (write.address,)).fetchone()
        for seq, move in enumerate(write.moves, int(row[0]) + 1):
            db.execute("INSERT INTO registry_moves VALUES (?, ?, ?)", (write.address, seq, _dumps(move)))


def _create_tables(db: sqlite3.Connection) -> None:
    """Every table of the current format that is not there yet (inside the caller's transaction)."""
    for statement in _SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS").split(";"):
        if statement.strip():
            db.execute(statement)


def _upgrade(db: sqlite3.Connection) -> None:
    """Format 1 -> 2 in one transaction: the registry document becomes rows of versions and moves."""
    if int(dict(db.execute("SELECT name, value FROM meta")).get("format_version", "0")) >= FORMAT_VERSION:
        return
    from mlspec.registry import NOTE, Entry, RegistryWrite

    db.execute("BEGIN IMMEDIATE")
    try:
        _create_tables(db)  # the registry's (the others are there already)
        row = db.execute("SELECT value FROM meta WHERE name = ?", (f"note:{NOTE}",)).fetchone()
        for address, data in (json.loads(row[0]) if row else {}).items():
            entry = Entry.from_json(data)
            _register(db, RegistryWrite(address, tuple(entry.versions), tuple(entry.history)))
        db.execute("DELETE FROM meta WHERE name = ?", (f"note:{NOTE}",))
        db.execute("UPDATE meta SET value = ? WHERE name = 'format_version'", (str(FORMAT_VERSION),))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _bump(db: sqlite3.Connection) -> int:
    row = db.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE name = 'serial' RETURNING value"
    ).fetchone()
    return int(row[0])


def _entry(row: tuple[Any, ...]) -> ResourceState:
    return ResourceState.from_row(row)


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _locked(holder: LockInfo | None, timeout: float) -> StateLockedError:
    waited = f" after waiting {timeout:g}s" if timeout else ""
    if holder is None:  # the OS lock is held, the row not yet (or no longer) written: a run starting or ending
        return StateLockedError(f"the state is locked{waited} by another mlspec run on this machine; wait for it, "
                                "or pass --lock-timeout to wait longer")
    message = f"the state is locked{waited} by {holder.describe()}"
    if holder.holder_gone():
        message += (f"; that process is gone (it was killed or crashed): if no apply is running, "
                    f"run `mlspec force-unlock {holder.id}`")
    else:
        message += "; wait for it, or pass --lock-timeout to wait longer"
    return StateLockedError(message)
