"""File digests: correct, and an unchanged file costs a stat, not a read."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from mlspec.digests import RACY_NS, FileDigests


def age(path: Path, seconds: float = 10) -> None:
    """Make a file look written `seconds` ago (outside the racy window)."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(then, then))


def test_digest_is_sha256(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n" * 1000)
    with FileDigests(None) as digests:
        assert digests.file(data) == hashlib.sha256(data.read_bytes()).hexdigest()


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    data, cache = tmp_path / "data.csv", tmp_path / "cache.db"
    data.write_bytes(b"x" * 100_000)
    age(data)
    with FileDigests(cache) as first:
        expected = first.file(data)
        assert first.reads == 1
    with FileDigests(cache) as second:
        assert second.file(data) == expected
        assert second.reads == 0


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    data, cache = tmp_path / "data.csv", tmp_path / "cache.db"
    data.write_bytes(b"version 1")
    age(data, 20)
    with FileDigests(cache) as first:
        old = first.file(data)
    data.write_bytes(b"version 2")
    age(data, 10)
    with FileDigests(cache) as second:
        assert second.file(data) != old and second.reads == 1


def test_a_same_size_edit_within_the_clock_tick_is_not_missed(tmp_path: Path) -> None:
    # The racy case: same size, same mtime, recorded in the same instant: stat cannot tell.
    data, cache = tmp_path / "data.csv", tmp_path / "cache.db"
    data.write_bytes(b"AAAA")
    stamp = os.stat(data).st_mtime_ns
    with FileDigests(cache) as first:
        first.file(data)
    data.write_bytes(b"BBBB")
    os.utime(data, ns=(stamp, stamp))
    with FileDigests(cache) as second:
        assert second.file(data) == hashlib.sha256(b"BBBB").hexdigest()
    assert RACY_NS >= 1_000_000_000


def test_tree_digests_every_file_in_a_stable_order(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.txt").write_text("b")
    (tmp_path / "d" / "sub" / "a.txt").write_text("a")
    with FileDigests(None) as digests:
        tree = digests.tree(tmp_path / "d")
    assert list(tree) == ["b.txt", "sub/a.txt"]
