"""The parse cache: per-file summaries and the last verdict, in .mlspec/cache/validate.db (SQLite).

A pre-commit hook validates the whole spec set on every commit, so the cache is built for three
cases, each cheaper than the last:

- nothing changed: every file's stat matches, and the last run's diagnostics are the answer
  (one query; no YAML, no pydantic);
- a few files changed but still declare the same addresses and facts, and reference the same
  names: only they are parsed and re-linked against the other files' exports;
- anything else: changed files are parsed, unchanged summaries unpickled, the whole set linked.

Stat data (size, mtime_ns, inode) is trusted only for files last modified well before the cache was
written (git's "racily clean" rule); others are re-read and compared by digest, so an edit within
the same clock tick is never missed. Only changed rows are written. The cache is an optimisation:
a missing, corrupt, locked or foreign cache is ignored (and rebuilt when possible), never an error.

A cache file is trusted by nobody but the checkout that wrote it. Everything in it is JSON, never
pickle, so a hostile one cannot run code; its key includes the device and inode of the project
directory, which a clone cannot reproduce, so a committed one cannot vouch for bad specs either;
and the cache directory ignores itself in git (as .pytest_cache does), so it is not committed by
accident and a pre-commit hook never sees it as a change.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlspec.spec.diagnostics import Diagnostic, Severity
from mlspec.spec.summary import FileSummary, NeedUse, RefUse, ResourceSummary

FORMAT = 5
RACY_NS = 2_000_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB);
CREATE TABLE IF NOT EXISTS files (
    rel TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, ctime_ns INTEGER, digest BLOB,
    exports BLOB, refsig BLOB, summary BLOB
);
"""

StatRow = tuple[int, int, int, int, bytes]  # size, mtime_ns, inode, ctime_ns, digest


def digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


class ParseCache:
    """One SQLite file; every method degrades to "no cache" on any database error."""

    def __init__(self, path: Path, key: tuple[Any, ...], *, enabled: bool = True) -> None:
        self.path = path
        self.key = _dumps(key)
        self.db: sqlite3.Connection | None = None
        self.written_ns = 0
        if enabled:
            self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# written by mlspec: this directory is a local cache\n*\n")
            db = sqlite3.connect(self.path, timeout=0.5, isolation_level=None)
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT name, value FROM meta"))
            if meta.get("format") != str(FORMAT) or meta.get("key") != self.key:
                # Another format, checkout or mlspec: start afresh (tables too, their columns may differ).
                db.executescript("BEGIN; DROP TABLE files; DROP TABLE meta; COMMIT;")
                db.executescript(_SCHEMA)
                db.execute("INSERT INTO meta VALUES ('format', ?), ('key', ?)", (str(FORMAT), self.key))
            else:
                self.written_ns = int(meta.get("written_ns", "0"))
            self.db = db
        except (sqlite3.Error, OSError, ValueError):
            self.db = None

    def stats(self) -> dict[str, StatRow]:
        query = "SELECT rel, size, mtime_ns, inode, ctime_ns, digest FROM files"
        return {row[0]: row[1:] for row in self._query(query)}

    def trusted(self, row: StatRow | None, st: os.stat_result) -> bool:
        """Whether `st` proves the file unchanged since `row` was recorded.

        ctime too, as git does: `cp -p`, `rsync -a` and `touch -r` put an old mtime back on new
        content, but cannot set ctime.
        """
        return (
            row is not None
            and st.st_mtime_ns < self.written_ns - RACY_NS
            and (row[0], row[1], row[2], row[3]) == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        )

    def result(self, files: str) -> tuple[list[Diagnostic], int] | None:
        """The last whole-project verdict (diagnostics, resource count), if it covered `files`."""
        rows = self._query("SELECT value FROM meta WHERE name = 'result'")
        if not rows:
            return None
        covered, diagnostics, count = json.loads(rows[0][0])
        if covered != files:
            return None
        return [_diagnostic(t) for t in diagnostics], int(count)

    def config(self, key: bytes) -> tuple[dict[str, Any], list[Diagnostic]] | None:
        rows = self._query("SELECT value FROM meta WHERE name = 'config'")
        if not rows:
            return None
        stored_key, values, diagnostics = json.loads(rows[0][0])
        return (values, [_diagnostic(t) for t in diagnostics]) if stored_key == key.hex() else None

    def store_config(self, key: bytes, values: dict[str, Any], diagnostics: list[Diagnostic]) -> None:
        if self.db is None:
            return
        try:
            blob = _dumps((key.hex(), values, [_row(d) for d in diagnostics]))
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('config', ?)", (blob,))
        except (sqlite3.Error, ValueError, TypeError):
            pass

    def signatures(self, rels: Iterable[str]) -> dict[str, str]:
        """rel -> the JSON of what the file exports and references (see `signature`)."""
        wanted = list(rels)
        out: dict[str, str] = {}
        for i in range(0, len(wanted), 500):  # SQLite's limit on bound parameters
            part = wanted[i : i + 500]
            marks = ",".join("?" * len(part))
            out.update(self._query(f"SELECT rel, exports || refsig FROM files WHERE rel IN ({marks})", part))
        return out

    def exports(self) -> dict[str, Any] | None:
        """rel -> its resources' [kind, name, doc, facts], for re-linking against: one JSON blob,
        kept beside the rows, because decoding 10k small ones costs more than the relink itself."""
        rows = self._query("SELECT value FROM meta WHERE name = 'exports'")
        try:
            return dict(json.loads(rows[0][0])) if rows else None
        except (ValueError, TypeError):
            return None

    def summaries(self, rels: Iterable[str]) -> dict[str, FileSummary]:
        wanted = set(rels)
        try:
            return {rel: _summary(json.loads(blob)) for rel, blob in
                    self._query("SELECT rel, summary FROM files") if rel in wanted}
        except (ValueError, TypeError, KeyError):  # a damaged row: parse those files again
            return {}

    def write(
        self,
        changed: dict[str, tuple[os.stat_result, bytes, FileSummary]],
        restat: dict[str, tuple[os.stat_result, bytes]],
        removed: Iterable[str],
        *,
        verdict: tuple[str, list[Diagnostic], int] | None,
        index: dict[str, Any] | None,
        forget: bool = False,
    ) -> None:
        """Commit changed rows, refreshed stats and removals, in one transaction.

        `verdict` (file set, diagnostics, resource count) replaces the stored verdict; `index`
        replaces the export index (None keeps it: the files' exports did not change); `forget`
        drops both, for a partial run whose new rows may contradict them.
        """
        if self.db is None:
            return
        rows = [
            (rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, key, *signature(s), _dumps(_summary_row(s)))
            for rel, (st, key, s) in changed.items()
        ]
        try:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
            db.executemany(
                "UPDATE files SET size = ?, mtime_ns = ?, inode = ?, ctime_ns = ? WHERE rel = ?",
                [(st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, rel) for rel, (st, _) in restat.items()],
            )
            db.executemany("DELETE FROM files WHERE rel = ?", [(rel,) for rel in removed])
            if forget:
                db.execute("DELETE FROM meta WHERE name IN ('result', 'exports')")
            if verdict is not None:
                files, diagnostics, count = verdict
                blob = _dumps((files, [_row(d) for d in diagnostics], count))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('result', ?)", (blob,))
            if index is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('exports', ?)", (_dumps(index),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('written_ns', ?)", (str(time.time_ns()),))
            db.execute("COMMIT")
        except sqlite3.Error:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                self.db = None

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        if self.db is None:
            return []
        try:
            return self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error:
            self.db = None
            return []

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def file_set(rels: Iterable[str]) -> str:
    """A digest of which files a verdict covers."""
    return hashlib.blake2b("\n".join(sorted(rels)).encode(), digest_size=16).hexdigest()


def signature(summary: FileSummary) -> tuple[str, str]:
    """(exports, references) as JSON text: equal text means other files see the same thing."""
    return _dumps(summary.exports()), _dumps(summary.ref_signature())


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _summary_row(s: FileSummary) -> Any:
    return ([_row(d) for d in s.diagnostics], [list(r) for r in s.resources])


def _summary(row: Any) -> FileSummary:
    diagnostics, resources = row
    return FileSummary(
        tuple(_diagnostic(t) for t in diagnostics),
        tuple(
            ResourceSummary(
                kind, name, doc,
                tuple(RefUse(v, tuple(k), tuple(loc)) for v, k, loc in refs),
                tuple(NeedUse(r, f, i, b, tuple(loc)) for r, f, i, b, loc in needs),
                tuple((f, tuple(v)) for f, v in facts),
                owner,
                tuple((k, v) for k, v in labels),
            )
            for kind, name, doc, refs, needs, facts, owner, labels in resources
        ),
    )


def _row(d: Diagnostic) -> tuple[Any, ...]:
    return (d.code, d.message, d.file, d.line, d.col, d.severity.value, d.field, d.expected, d.hint, d.doc,
            d.width)


def _diagnostic(t: tuple[Any, ...]) -> Diagnostic:
    code, message, file, line, col, severity, field, expected, hint, doc, width = t
    return Diagnostic(code, message, file, line, col, Severity(severity), field, expected, hint, doc, width)
