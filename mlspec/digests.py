"""Content digests of files and directories, through a stat cache (DVC's, git's index).

An unchanged 10 GB dataset must cost a stat, not a read: a digest is stored with the file's
(inode, size, mtime_ns) under .mlspec/cache/digests.db and reused while those match, except for
files modified within two seconds of the cache's last write (git's "racily clean" rule: a same-size
edit within the clock's resolution would not show in the stat). Reads and writes files; plan code
receives the digests as plain strings.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

RACY_NS = 2_000_000_000


class FileDigests:
    """sha256 of files, cached by stat. Use as a context manager; the cache is written on exit."""

    def __init__(self, cache_path: Path | None) -> None:
        self.reads = 0  # files actually read (the rest came from the cache)
        self._db: sqlite3.Connection | None = None
        self._started_ns = time.time_ns()
        self._pending: list[tuple[str, int, int, int, str]] = []
        self._rows: dict[str, tuple[int, int, int, str, int]] | None = None
        self._session: dict[str, tuple[int, int, int, str]] = {}  # read during this run: not racy to itself
        if cache_path is not None:
            try:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(cache_path, timeout=5, isolation_level=None)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, inode INTEGER, size INTEGER, "
                    "mtime_ns INTEGER, sha256 TEXT, recorded_ns INTEGER)"
                )
            except (sqlite3.Error, OSError):
                self._db = None  # a cache we cannot use is just a slower run

    def __enter__(self) -> FileDigests:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def file(self, path: str | os.PathLike[str]) -> str:
        """The sha256 hex digest of one file."""
        real = os.path.abspath(path)  # not realpath: resolving every link costs more than the digest lookup
        st = os.stat(real)
        seen = self._session.get(real)
        if seen is not None and seen[:3] == (st.st_ino, st.st_size, st.st_mtime_ns):
            return seen[3]
        cached = self._lookup(real)
        if cached is not None:
            inode, size, mtime_ns, sha, recorded_ns = cached
            trusted = (inode, size, mtime_ns) == (st.st_ino, st.st_size, st.st_mtime_ns) and (
                st.st_mtime_ns < recorded_ns - RACY_NS
            )
            if trusted:
                return sha
        sha = sha256_file(real)
        self.reads += 1
        self._pending.append((real, st.st_ino, st.st_size, st.st_mtime_ns, sha))
        self._session[real] = (st.st_ino, st.st_size, st.st_mtime_ns, sha)
        return sha

    def tree(self, root: Path) -> dict[str, str]:
        """Every file below `root` (POSIX relative path -> digest), in a stable order."""
        out: dict[str, str] = {}
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath, name)
                out[path.relative_to(root).as_posix()] = self.file(path)
        return out

    def _lookup(self, path: str) -> tuple[int, int, int, str, int] | None:
        if self._rows is None:
            self._rows = self._load()
        return self._rows.get(path)

    def _load(self) -> dict[str, tuple[int, int, int, str, int]]:
        """Every recorded digest, in one query: a plan looks up thousands of files."""
        if self._db is None:
            return {}
        try:
            rows = self._db.execute("SELECT path, inode, size, mtime_ns, sha256, recorded_ns FROM digests")
            return {row[0]: (row[1], row[2], row[3], row[4], row[5]) for row in rows}
        except sqlite3.Error:
            return {}

    def close(self) -> None:
        if self._db is None:
            return
        try:
            if self._pending:
                rows = [(*row, self._started_ns) for row in self._pending]
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
        except sqlite3.Error:
            pass
        finally:
            self._pending.clear()
            self._db.close()
            self._db = None


_DIGEST = re.compile(r"(sha256:|tree:)?[0-9a-f]{16,}")


def is_digest(value: str) -> bool:
    """Is an observed input a digest (of a file, a tree) rather than a value to show as it is (a version)?"""
    return _DIGEST.fullmatch(value) is not None


def listing_digest(entries: Iterable[tuple[str, str]]) -> str:
    """The sha256 of a `name -> digest` listing, in the order given: what a directory, a dataset's
    files or a model's files are, as one digest."""
    return hashlib.sha256("".join(f"{name}\0{digest}\n" for name, digest in entries).encode()).hexdigest()


def sha256_file(path: str | Path) -> str:
    """OpenSSL's sha256 over the file (hashlib.file_digest reads in large blocks without copies)."""
    with open(path, "rb", buffering=0) as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
