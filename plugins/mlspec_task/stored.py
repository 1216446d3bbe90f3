"""A Task's outs in the artifact store: what lets a fresh CI runner, or another clone, restore them
instead of running the command again, and see a missing out as not yet materialised rather than
deleted (DVC's `push`/`pull`, and its run cache, keyed by the step's fingerprint).

A file is one content-addressed artifact; a directory is its files, each an artifact, and a manifest
(itself an artifact) naming them. The run cache is a small named object, `runs/<fingerprint>.json`,
holding what each out was stored as.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlspec.sdk import ArtifactStore, paths

Stored = dict[str, dict[str, Any]]  # out -> {"file": artifact} | {"dir": manifest artifact}


def store_of(artifacts: str, workdir: Path) -> ArtifactStore:
    return ArtifactStore(artifacts or ".mlspec/artifacts", workdir)


def save(store: ArtifactStore, workdir: Path, outs: list[str]) -> Stored:
    """Each out into the store (copied: the out stays where the command wrote it)."""
    found: Stored = {}
    for out in outs:
        path = paths.inside(workdir, out, "out")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            manifest = {p.relative_to(path).as_posix(): store.put(p, keep=True).to_json() for p in files}
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
                json.dump(manifest, fh, sort_keys=True)
            found[out] = {"dir": store.put(Path(fh.name), ".json").to_json()}
        else:
            found[out] = {"file": store.put(path, "".join(path.suffixes[-1:]), keep=True).to_json()}
    return found


def missing(store: ArtifactStore, stored: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The outs whose stored form is gone from the store (one listing on object storage)."""
    refs = {out: ref.get("file") or ref.get("dir") or {} for out, ref in stored.items()}
    return store.missing({out: ref for out, ref in refs.items() if ref})


def restore(store: ArtifactStore, workdir: Path, stored: Mapping[str, Mapping[str, Any]], *,
            only_missing: bool = False) -> list[str]:
    """Write the outs back from the store, each file checked against its digest and renamed into
    place whole; returns the outs written. A symlink at an out is removed, never written through."""
    todo = {out: ref for out, ref in stored.items()
            if not (only_missing and paths.entry(workdir, out, "out").exists())}
    if not todo:  # the common case before a step runs: everything is here, no scratch directory made
        return []
    written = []
    with tempfile.TemporaryDirectory(prefix=".mlspec-restore-") as scratch:
        for out, ref in todo.items():
            paths.remove(workdir, out, "out")
            if "file" in ref:
                _place(store.local(ref["file"], Path(scratch)), paths.entry(workdir, out, "out"))
            else:
                manifest = json.loads(store.local(ref["dir"], Path(scratch)).read_bytes())
                for rel, artifact in manifest.items():
                    _place(store.local(artifact, Path(scratch)), paths.entry(workdir, f"{out}/{rel}", "out"))
            written.append(out)
    return written


def _place(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.restoring")
    shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


def index_name(fingerprint: str) -> str:
    return f"runs/{fingerprint}.json"
