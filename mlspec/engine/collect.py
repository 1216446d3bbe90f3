"""`mlspec artifacts gc`: what the artifact store holds that nothing refers to any more.

Reachable: every artifact that state's outputs name (`{"uri", "digest"}` anywhere in them), every
artifact a registry version names (rollback needs old champions), what a directory's manifest lists,
and the run cache's index of every fingerprint state holds. Everything else under the store's
`sha256/` and `runs/` is garbage. A dry run by default: it says what it would delete and how much.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlspec.artifacts import ArtifactStore


@dataclass
class Garbage:
    kept: int = 0
    unreferenced: list[str] = field(default_factory=list)  # store keys
    bytes: int = 0
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kept": self.kept, "unreferenced": len(self.unreferenced), "bytes": self.bytes,
                "deleted": self.deleted, "keys": self.unreferenced[:100]}


def refs(value: Any) -> Iterator[dict[str, Any]]:
    """Every artifact reference in a JSON value."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("uri"), str) and isinstance(item.get("digest"), str):
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def collect(root: Path | None = None, *, delete: bool = False) -> Garbage:
    from mlspec.engine.session import reading_state
    from mlspec.project import load_project

    project = load_project(root)
    store = ArtifactStore(str(project.setting("artifacts", "url")), project.root)
    with reading_state(project) as state:
        entries = state.list()
        registry = state.registry()
    named = [*(refs([e.outputs for e in entries])), *(refs([e.to_json() for e in registry.values()]))]
    reachable = {store.key(ref["uri"]) for ref in named}
    for ref in list(named):  # a directory's manifest: its files are reachable too
        if ref["uri"].endswith(".json") and "/sha256/" in f"/{store.key(ref['uri'])}":
            manifest = store.read(ref["uri"])
            if manifest is not None:
                try:
                    listed = json.loads(manifest)
                except ValueError:
                    continue
                reachable |= {store.key(r["uri"]) for r in refs(listed)}
    reachable |= {f"runs/{e.fingerprint}.json" for e in entries}
    found = Garbage()
    for key, size in store.stored():
        if key in reachable:
            found.kept += 1
        else:
            found.unreferenced.append(key)
            found.bytes += size
    if delete and found.unreferenced:
        store.delete_keys(found.unreferenced)
        found.deleted = True
    return found


def export(address: str, to: Path, *, version: int | None = None, root: Path | None = None) -> list[str]:
    """A registered resource's files (its champion's, or `version`'s) as a plain directory, each checked
    against its digest: what `transformers.AutoModel.from_pretrained(DIR)` or `torch.load` reads.
    Returns the file names written."""
    from mlspec.engine.edits import entries, resolve
    from mlspec.errors import RegistryError
    from mlspec.project import load_project
    from mlspec.registry import CHAMPION

    project = load_project(root)
    found = entries(project.root)
    name = resolve(found, address)
    entry = found[name]
    record = entry.version(version) if version is not None else entry.alias(CHAMPION)
    if record is None:
        raise RegistryError(f"{name} has no champion: name a version (`--version N`; `mlspec models show {name}`)")
    files = record.get("files") or {}
    if not files:
        raise RegistryError(f"{name} version {record['version']} names no files")
    ArtifactStore(str(project.setting("artifacts", "url")), project.root).fetch(files, to)
    return sorted(files)
