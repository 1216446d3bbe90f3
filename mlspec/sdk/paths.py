"""Paths a spec names stay inside the spec repo, checked at the moment they are used.

Validation refuses absolute paths and `..`; that is not enough. A committed symlink (`data -> /`)
makes an innocent `data/out.txt` point anywhere, and a symlink swapped in after the plan must not
win either. So every read, write and delete resolves the path right then (`os.path.realpath`, which
follows every link) and refuses one that lands outside the repo. A delete resolves the parent and
removes the entry itself, never what a link at the end points to.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from mlspec.errors import PathEscape

__all__ = ["PathEscape", "entry", "inside", "leaves", "outside_of", "remove"]


def inside(root: Path, rel: str | os.PathLike[str], what: str = "path", outside: Iterable[str] = ()) -> Path:
    """`root/rel` with every symlink resolved, or PathEscape when that leaves `root`. `outside`: the
    directories mlspec.yaml lets specs read from (`paths.outside`); pass them for reads only."""
    base = _real_root(str(root))
    target = _resolved(os.path.join(base, rel))
    if _under(target, base) or any(_under(target, os.path.realpath(d)) for d in outside):
        return Path(target)
    raise PathEscape(f"{what} `{rel}` resolves outside the spec repo (to {target}): refused"
                     + ("" if outside else "; a directory that must be read from outside goes in mlspec.yaml's "
                        "`paths.outside`"))


def leaves(root: Path | None, rel: str, outside: Iterable[str] = ()) -> bool:
    """At validate time: is `rel` absolute or `..`-escaping, and not under a directory of `outside`?"""
    if not (rel.startswith("/") or ".." in rel.split("/")):
        return False
    target = os.path.normpath(os.path.join(str(root) if root is not None else "/nonexistent-root", rel))
    return not any(_under(target, os.path.normpath(d)) for d in outside)


def outside_of(root: Path, rel: str, outside: Iterable[str]) -> str | None:
    """The allowed outside directory `rel` reads from, or None when it stays in the repo."""
    target = os.path.normpath(os.path.join(root, rel))
    if _under(target, os.path.normpath(root)):
        return None
    return next((d for d in outside if _under(target, os.path.normpath(d))), None)


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    """The repo's own path, resolved: it does not move while mlspec runs."""
    return os.path.realpath(root)


def _resolved(path: str) -> str:
    """realpath, by the kernel where it can: open the path (O_PATH follows every link, in C) and read
    back what it opened. posixpath.realpath lstats each component in Python, ~45 us a path; this is
    three system calls, whatever the depth. A path that does not exist falls back to realpath."""
    if _O_PATH is not None:
        try:
            fd = os.open(path, _O_PATH)
        except OSError:
            return os.path.realpath(path)
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return os.path.realpath(path)
        finally:
            os.close(fd)
    return os.path.realpath(path)


_O_PATH = getattr(os, "O_PATH", None) if os.path.isdir("/proc/self/fd") else None


def _under(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def entry(root: Path, rel: str, what: str = "path") -> Path:
    """The directory entry `rel` names (its parent resolved and confined; the last part, a link or
    not, kept as it is): what a write or a delete acts on."""
    parent = inside(root, os.path.dirname(rel.rstrip("/")) or ".", what)
    name = os.path.basename(rel.rstrip("/"))
    if name in ("", ".", ".."):
        raise PathEscape(f"{what} `{rel}` names no file inside the spec repo: refused")
    return parent / name


def remove(root: Path, rel: str, what: str = "path") -> None:
    """Delete a file or a directory tree the spec names; a symlink is removed, not followed."""
    path = entry(root, rel, what)
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
