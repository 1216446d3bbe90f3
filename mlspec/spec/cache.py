"""The parse cache: file summaries keyed by path and content digest, under .mlspec/cache/.

A pre-commit hook validates the whole spec set on every commit; with this cache an unchanged file
costs one stat. Stat data (size, mtime_ns, inode) is trusted only for files last modified well
before the cache was written (git's "racily clean" rule); anything else is re-read and its digest
compared, so an edit within the same clock tick is never missed. The cache is an optimisation:
a missing, corrupt or foreign cache file is ignored and rebuilt, never an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from mlspec.spec.summary import FileSummary

FORMAT = 1
_RACY_NS = 2_000_000_000


@dataclass(slots=True)
class Entry:
    size: int
    mtime_ns: int
    inode: int
    digest: bytes
    summary: FileSummary


@dataclass
class ParseCache:
    path: Path
    key: tuple[object, ...]
    entries: dict[str, Entry] = field(default_factory=dict)
    written_ns: int = 0
    dirty: bool = False

    @classmethod
    def open(cls, path: Path, key: tuple[object, ...]) -> ParseCache:
        cache = cls(path, key)
        try:
            with path.open("rb") as fh:
                stored = pickle.load(fh)
            if stored["format"] == FORMAT and stored["key"] == key:
                cache.entries = stored["entries"]
                cache.written_ns = stored["written_ns"]
        except Exception:  # noqa: BLE001 - any unreadable cache is just a cold start
            cache.entries = {}
        return cache

    def lookup_stat(self, rel: str, st: os.stat_result) -> FileSummary | None:
        entry = self.entries.get(rel)
        if entry is None or st.st_mtime_ns >= self.written_ns - _RACY_NS:
            return None
        if (entry.size, entry.mtime_ns, entry.inode) == (st.st_size, st.st_mtime_ns, st.st_ino):
            return entry.summary
        return None

    def lookup_digest(self, rel: str, st: os.stat_result, digest: bytes) -> FileSummary | None:
        entry = self.entries.get(rel)
        if entry is None or entry.digest != digest:
            return None
        self.store(rel, st, digest, entry.summary)
        return entry.summary

    def store(self, rel: str, st: os.stat_result, digest: bytes, summary: FileSummary) -> None:
        self.entries[rel] = Entry(st.st_size, st.st_mtime_ns, st.st_ino, digest, summary)
        self.dirty = True

    def save(self, keep: set[str]) -> None:
        """Write atomically (temp file + rename); forget files no longer in the spec set."""
        if not self.dirty and keep == set(self.entries):
            return
        entries = {rel: e for rel, e in self.entries.items() if rel in keep}
        payload = {"format": FORMAT, "key": self.key, "written_ns": time.time_ns(), "entries": entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".validate-", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(payload, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            pass  # read-only checkout: validation still works, just without the cache


def digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()
