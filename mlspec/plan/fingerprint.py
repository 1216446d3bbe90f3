"""Fingerprints: what a resource's result depends on, as a digest (SQLMesh's split, DVC's inputs).

A fingerprint has two parts. The data part covers everything that changes the result: the spec
(without its descriptive fields), the plugin and its version, the observed inputs (a dataset's file
digests) and the upstream resources' data fingerprints, so a change anywhere upstream reaches every
dependent (a Merkle DAG). The metadata part covers owner, labels, annotations, description and
lifecycle: changing those only updates state, never recomputes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Spec fields that describe or steer, but do not change what is computed.
DESCRIPTIVE_SPEC_FIELDS = frozenset(("description", "lifecycle", "depends_on"))
METADATA_FIELDS = ("owner", "labels", "annotations", "description")


@dataclass(frozen=True)
class Fingerprint:
    data: str  # sha256 hex: a change means the resource must be recomputed
    descriptive: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def short(self) -> str:
        return self.data[:8]

    @cached_property
    def metadata(self) -> str:
        """sha256 hex of the descriptive part: a change alone means "update in place" (state only).
        Computed on demand: a plan of 10,000 unchanged resources never needs it."""
        return digest(self.descriptive)


def canonical(value: Any) -> bytes:
    """The same bytes for the same value, whatever the key order in YAML."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode()


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


def fingerprint(
    kind: str,
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    *,
    plugin: str,
    plugin_version: str,
    inputs: Mapping[str, str] | None = None,
    upstream: Mapping[str, Fingerprint] | None = None,
) -> Fingerprint:
    """`inputs`: observation name -> digest (e.g. file path -> sha256); `upstream`: address -> fingerprint."""
    data = {
        "kind": kind,
        "spec": {k: v for k, v in spec.items() if k not in DESCRIPTIVE_SPEC_FIELDS},
        "plugin": [plugin, plugin_version],
        "inputs": dict(sorted((inputs or {}).items())),
        "upstream": {address: fp.data for address, fp in sorted((upstream or {}).items())},
    }
    descriptive = {
        "metadata": {k: metadata.get(k) for k in METADATA_FIELDS},
        "spec": {k: spec.get(k) for k in sorted(DESCRIPTIVE_SPEC_FIELDS)},
    }
    return Fingerprint(digest(data), descriptive)
