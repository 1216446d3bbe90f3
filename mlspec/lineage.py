"""Lineage: what a resource was built from (versions, file digests, upstream resources, recursively)
and what depends on it, from the specs' graph and what state recorded. Pure: the caller reads both."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlspec.graph import SpecGraph
    from mlspec.state.model import ResourceState

SHOWN_OUTPUTS = ("version", "rows", "held", "summary")  # summary: a plugin's one line for people


def tree(graph: SpecGraph, recorded: Mapping[str, ResourceState], address: str) -> dict[str, Any]:
    """`address` with, under "from", the same for each thing it was built from; "used_by" at the top."""
    parents = graph.direct_upstream()

    def node(at: str, seen: frozenset[str]) -> dict[str, Any]:
        data = facts(at, recorded.get(at))
        data["from"] = [node(p, seen | {at}) for p in parents.get(at, ()) if p not in seen]
        return data

    return {**node(address, frozenset()), "used_by": sorted(graph.downstream(address) - {address})}


def facts(address: str, entry: ResourceState | None) -> dict[str, Any]:
    """What state says one resource was built from: its fingerprint, commit, the files its inputs
    observed and the sources it read, its version and rows, and, for a resource that registers
    versions, which version is the champion its dependents use."""
    data: dict[str, Any] = {"address": address, "applied": entry is not None}
    if entry is None:
        return data
    outputs = entry.outputs
    data |= {"fingerprint": entry.fingerprint, "status": entry.status.value, "commit": entry.commit,
             "updated_at": entry.updated_at}
    files = {k: v for k, v in (entry.spec.get("inputs") or {}).items() if v and k != "rows"}
    files |= outputs.get("sources") or {}
    data["files"] = dict(sorted(files.items()))
    data |= {key: outputs[key] for key in SHOWN_OUTPUTS if key in outputs}
    if isinstance(outputs.get("champion"), dict):
        data["champion"] = outputs["champion"].get("version")
    return data
