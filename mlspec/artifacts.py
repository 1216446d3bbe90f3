"""The content-addressed artifact store: where steps put what they produce (splits, profiles, weights).

An artifact is named by the SHA-256 of its bytes (`<store>/sha256/ab/abcdef….parquet`), so the same
content is stored once, a name can never point at other bytes, and a digest is checked on every
read. The default store is `.mlspec/artifacts/` in the spec repo; any fsspec URL (`s3://bucket/x`)
works when fsspec and its filesystem package are installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlspec.digests import sha256_file
from mlspec.errors import ArtifactError


@dataclass(frozen=True, slots=True)
class Artifact:
    uri: str
    digest: str  # sha256 hex of the bytes
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"uri": self.uri, "digest": self.digest, "size": self.size}


class ArtifactStore:
    def __init__(self, url: str, root: Path) -> None:
        """`url`: a directory (relative to the spec repo `root`) or an fsspec URL."""
        self.url = url
        self.root = root
        self.remote = "://" in url and not url.startswith("file://")
        self.base = url.rstrip("/") if self.remote else str((root / url.removeprefix("file://")).resolve())
        self._listed: set[str] | None = None  # the remote store's keys, listed once per store

    def put(self, path: Path, suffix: str = "", *, keep: bool = False) -> Artifact:
        """Store a finished local file under its digest: moved into a local store, unless `keep` (a
        file that must stay where it is, a Task's out), then copied."""
        digest = sha256_file(path)
        size = path.stat().st_size
        rel = f"sha256/{digest[:2]}/{digest}{suffix}"
        if self.remote:
            fs, target = self._fs(f"{self.base}/{rel}")
            if not fs.exists(target):  # content-addressed: what is there already is these bytes
                _retried(lambda: fs.put_file(str(path), target), f"upload {path.name} to {self.base}")
            if not keep:
                path.unlink(missing_ok=True)
            return Artifact(f"{self.base}/{rel}", digest, size)
        target_path = Path(self.base) / rel
        # What is stored under this digest is these bytes, unless it was damaged since: checked, not assumed.
        if target_path.exists() and target_path.stat().st_size == size and sha256_file(target_path) == digest:
            if not keep:
                path.unlink(missing_ok=True)  # the same bytes are stored already
        else:
            target_path.parent.mkdir(parents=True, exist_ok=True)
            moved = False
            if not keep:
                try:
                    os.replace(path, target_path)
                    moved = True
                except OSError:
                    pass  # another filesystem: copied below
            if not moved:  # copy beside, then rename into place: readers never see part of it
                tmp = target_path.with_name(f"{target_path.name}.{os.getpid()}.tmp")
                shutil.copyfile(path, tmp)
                os.replace(tmp, target_path)
                if not keep:
                    path.unlink(missing_ok=True)
        return Artifact(self._name(target_path), digest, size)

    def _name(self, path: Path) -> str:
        """A local artifact's URI: relative to the spec repo when inside it, so the repo can move
        (another checkout, a CI runner's directory) without every artifact looking deleted."""
        try:
            return path.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def named(self, name: str) -> bytes | None:
        """A small object kept under a name, not a digest (a run cache's index): its bytes, or None."""
        if self.remote:
            fs, target = self._fs(f"{self.base}/{name}")
            try:
                return bytes(fs.cat_file(target))
            except FileNotFoundError:
                return None
        try:
            return (Path(self.base) / name).read_bytes()
        except FileNotFoundError:
            return None

    def set_named(self, name: str, data: bytes) -> None:
        """Write a named object whole (a reader sees the old bytes or the new, never part of them)."""
        if self.remote:
            fs, target = self._fs(f"{self.base}/{name}")
            _retried(lambda: fs.pipe_file(target, data), f"write {name} to {self.base}")
            return
        target_path = Path(self.base) / name
        target_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = target_path.with_name(f".{target_path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target_path)

    # -- for `artifacts gc` (mlspec/engine/collect.py): the store's keys, with the store's base left out --

    def key(self, uri: str) -> str:
        """A URI as a key relative to the store's base (`sha256/ab/abc….parquet`)."""
        if self.remote:
            return self._fs(uri)[1].removeprefix(self._fs(self.base)[1].rstrip("/") + "/")
        path = self.path(uri).resolve()
        try:
            return path.relative_to(self.base).as_posix()
        except ValueError:
            return str(path)

    def read(self, uri: str) -> bytes | None:
        try:
            if self.remote:
                fs, target = self._fs(uri)
                return bytes(fs.cat_file(target))
            return self.path(uri).read_bytes()
        except (FileNotFoundError, OSError):
            return None

    def stored(self) -> list[tuple[str, int]]:
        """Every object under `sha256/` and `runs/`, with its size."""
        out: list[tuple[str, int]] = []
        if self.remote:
            fs, base = self._fs(self.base)
            fs.invalidate_cache()
            for top in ("sha256", "runs"):
                try:
                    found = fs.find(f"{base}/{top}", detail=True)
                except FileNotFoundError:
                    continue
                out += [(key.removeprefix(base.rstrip("/") + "/"), int(info.get("size") or 0))
                        for key, info in found.items()]
            return sorted(out)
        for top in ("sha256", "runs"):
            where = Path(self.base) / top
            if where.is_dir():
                out += [(p.relative_to(self.base).as_posix(), p.stat().st_size) for p in where.rglob("*")
                        if p.is_file() and not p.name.startswith(".")]
        return sorted(out)

    def delete_keys(self, keys: list[str]) -> None:
        if self.remote:
            fs, base = self._fs(self.base)
            fs.rm([f"{base.rstrip('/')}/{k}" for k in keys])
            return
        for key in keys:
            (Path(self.base) / key).unlink(missing_ok=True)

    def path(self, uri: str) -> Path:
        """Where a local artifact's URI points (relative URIs are relative to the spec repo)."""
        return Path(uri) if os.path.isabs(uri) else self.root / uri

    def exists(self, uri: str) -> bool:
        if self.remote:
            fs, target = self._fs(uri)
            return bool(fs.exists(target))
        return self.path(uri).exists()

    def missing(self, named: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """The names, in order, whose artifact ({"uri": ...}) is no longer in the store: refresh's drift.
        On object storage the store is listed once (a LIST per thousand keys) rather than asked once
        per artifact (a HEAD each): a refresh of thousands of artifacts stays one or two requests."""
        if not self.remote:
            return [name for name, artifact in named.items() if not self.exists(artifact["uri"])]
        listed = self._listing()
        return [name for name, artifact in named.items() if self._fs(artifact["uri"])[1] not in listed]

    def _listing(self) -> set[str]:
        if self._listed is None:
            fs, base = self._fs(self.base)
            fs.invalidate_cache()  # fsspec keeps listings per process: a refresh must see the store as it is
            try:
                self._listed = {str(key) for key in fs.find(base)}
            except FileNotFoundError:
                self._listed = set()
        return self._listed

    def local(self, artifact: Artifact | dict[str, Any], scratch: Path) -> Path:
        """A local path holding the artifact's bytes, verified against its digest."""
        uri, digest = (artifact.uri, artifact.digest) if isinstance(artifact, Artifact) else (
            artifact["uri"], artifact["digest"])
        if self.remote:
            fs, target = self._fs(uri)
            path = scratch / digest
            try:
                _retried(lambda: fs.get_file(target, str(path)), f"download {uri}")
            except FileNotFoundError:
                raise ArtifactError(f"artifact {uri} is missing from the store") from None
        else:
            path = self.path(uri)
        if not path.exists():
            raise ArtifactError(f"artifact {uri} is missing")
        if sha256_file(path) != digest:
            raise ArtifactError(f"artifact {uri} does not hold the bytes its name says (sha256 {digest[:12]}…)")
        return path

    def fetch(self, files: Mapping[str, Mapping[str, Any]], directory: Path) -> Path:
        """Named artifacts ({name: {"uri", "digest"}}) as a plain directory under their names, each
        checked against its digest: what a loader that finds files by name reads (a transformers
        model directory, an ONNX graph beside its external weights)."""
        directory.mkdir(parents=True, exist_ok=True)
        scratch = directory / ".fetching"
        scratch.mkdir(exist_ok=True)
        try:
            for name, artifact in sorted(files.items()):
                target = directory / name
                if Path(name).is_absolute() or ".." in Path(name).parts:
                    raise ArtifactError(f"artifact name `{name}` leaves its directory")
                target.parent.mkdir(parents=True, exist_ok=True)
                local = self.local(dict(artifact), scratch)  # checks the digest
                if self.remote:
                    os.replace(local, target)
                else:
                    shutil.copyfile(local, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return directory

    def _fs(self, uri: str) -> tuple[Any, str]:
        try:
            import fsspec
        except ImportError:
            raise ArtifactError(f"the artifact store {self.url} needs fsspec: pip install fsspec (and the "
                                "filesystem's package, e.g. s3fs)") from None
        fs, target = fsspec.core.url_to_fs(uri)
        return fs, target


RETRIES = (0.5, 2.0, 8.0)  # seconds between attempts at a request the object store failed


def _retried(call: Any, what: str) -> None:
    """Object stores fail transiently (a 503, a reset connection): retry with backoff, then say what."""
    import time

    for delay in (*RETRIES, None):
        try:
            call()
            return
        except FileNotFoundError:
            raise
        except OSError as err:
            if delay is None:
                raise ArtifactError(f"cannot {what}: {err} (after {len(RETRIES) + 1} attempts)") from None
            time.sleep(delay)
