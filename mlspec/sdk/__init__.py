"""The plugin SDK: the one package a plugin imports from mlspec.

Everything a plugin needs is here: the contract (`Plugin`, `Capabilities`), a step as data
(`StepRequest`, `StepResult`, `Version`) and the `Runtime` handle beside it, the typed outputs each
kind publishes (`DatasetOutputs`, `ModelOutputs`, ...), and the few services of the core a plugin
leans on (the stat-cached `FileDigests`, the content-addressed `ArtifactStore`, positions for its
issues, did-you-mean). The core's other modules are not a plugin's to import: an import-linter
contract in CI holds the built-in plugins to that, as it holds the core to never importing a plugin.

docs/plugins.md walks through a complete plugin; docs/architecture.md shows where this boundary sits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlspec.address import Address
from mlspec.artifacts import Artifact, ArtifactStore
from mlspec.digests import FileDigests, listing_digest, sha256_file
from mlspec.errors import ArtifactError, MlspecError, PluginError, StepFailed, StepInterrupted
from mlspec.masking import Mask
from mlspec.sdk import paths, processes
from mlspec.sdk.contract import (
    API_VERSION,
    Capabilities,
    Diff,
    Estimate,
    FieldChange,
    Observation,
    PlanContext,
    Plugin,
    ReplaceOrder,
)
from mlspec.sdk.outputs import (
    ArtifactRef,
    DatasetOutputs,
    ModelOutputs,
    OptimizationOutputs,
    PromptOutputs,
    Published,
    ServiceOutputs,
    Split,
    TaskOutputs,
    files_digest,
)
from mlspec.sdk.step import Outputs, Runtime, StepRequest, StepResult, Version
from mlspec.spec.kinds.base import Issue
from mlspec.spec.loader import ENV_REF
from mlspec.spec.specset import Resource
from mlspec.spec.suggest import did_you_mean
from mlspec.state.model import ResourceState

CHAMPION = "champion"  # the alias dependents build on
CANDIDATE = "candidate"  # the alias of a version that failed its gates

__all__ = [
    "API_VERSION",
    "CANDIDATE",
    "CHAMPION",
    "ENV_REF",
    "Address",
    "Artifact",
    "ArtifactError",
    "ArtifactRef",
    "ArtifactStore",
    "Capabilities",
    "DatasetOutputs",
    "Diff",
    "Estimate",
    "FieldChange",
    "FileDigests",
    "Issue",
    "Mask",
    "MlspecError",
    "ModelOutputs",
    "Observation",
    "OptimizationOutputs",
    "Outputs",
    "PlanContext",
    "Plugin",
    "PluginError",
    "PromptOutputs",
    "Published",
    "ReplaceOrder",
    "Resource",
    "ResourceState",
    "Runtime",
    "ServiceOutputs",
    "Split",
    "StepFailed",
    "StepInterrupted",
    "StepRequest",
    "StepResult",
    "TaskOutputs",
    "Version",
    "alias_record",
    "did_you_mean",
    "files_digest",
    "listing_digest",
    "paths",
    "position",
    "processes",
    "resolve_env",
    "sha256_file",
]


def alias_record(registry: Mapping[str, Any] | None, alias: str = CHAMPION) -> Mapping[str, Any] | None:
    """The version an alias points at in a request's `registry` entry (the champion's metrics, for a
    gate relative to it), or None."""
    if not registry:
        return None
    number = (registry.get("aliases") or {}).get(alias)
    return next((v for v in registry.get("versions") or () if v.get("version") == number), None)


def resolve_env(value: str, where: str) -> str:
    """`value` with each `${env:NAME}` replaced from the environment: at apply, never at plan. A variable
    that is not set is a StepFailed naming it; the value itself is never shown (the engine masks every
    value a spec names this way, wherever it would be printed or stored)."""
    import os

    missing = [m.group(1) for m in ENV_REF.finditer(value) if m.group(1) not in os.environ]
    if missing:
        raise StepFailed(f"{where} names ${{env:{missing[0]}}}, which is not set here")
    return ENV_REF.sub(lambda m: os.environ[m.group(1)], value)


def position(resource: Resource, *loc: str | int) -> str:
    """`specs/models/x.yaml:14:17 spec.architecture.entrypoint`: where a field of a resource is written,
    for messages raised at apply time (plan-time problems are `Issue`s, positioned by the core)."""
    from mlspec.spec.specset import issue_diagnostics

    path = ".".join(str(part) for part in loc)
    try:
        found = issue_diagnostics(resource, [Issue(tuple(loc), "")])[0]
        return f"{found.file}:{found.line}:{found.col} {path}"
    except (OSError, IndexError, KeyError, TypeError):
        return f"{resource.file} {path}"
