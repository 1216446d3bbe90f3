"""The plugin contract: what mlspec asks a plugin about, and has it do to, the resources of its kinds.

In the spirit of a Terraform provider. Each kind has exactly one owner, so dispatch is 1:1 and the
contract is a typed Protocol (mypy checks a plugin's signatures), not pluggy's fan-out hooks. Its
discipline is pluggy's all the same: one contract, discovery through entry points, built-in plugins
registered exactly like third-party ones, and checks when a plugin is loaded, not when first called.

The core never tests a kind's name. What it must treat specially about a kind, a plugin declares
in `capabilities`: that it registers versions, that its dependents may take only a version that
passed its gates, that it writes paths in the repo, what it publishes to its dependents, and how a
replace is carried out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlspec.digests import FileDigests
    from mlspec.sdk.outputs import Published
    from mlspec.sdk.step import Runtime, StepRequest, StepResult
    from mlspec.spec.kinds.base import Issue
    from mlspec.spec.specset import Resource
    from mlspec.state.model import ResourceState

API_VERSION = 2
METHODS = ("validate", "inputs", "refresh", "diff", "apply", "destroy", "estimate")


class ReplaceOrder(enum.StrEnum):
    """How a replace is carried out. Decided at plan time and shown, so a reviewer sees downtime."""

    IN_PLACE = "in_place"  # apply with `previous` set; the plugin overwrites (a file, a model version)
    CREATE_BEFORE_DESTROY = "create_before_destroy"  # the new object first, then the old one goes (serving)
    DESTROY_BEFORE_CREATE = "destroy_before_create"  # objects that cannot coexist (a port, a name)

    @property
    def shown(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Capabilities:
    """What the core must treat specially about a plugin's kinds, declared instead of named.

    `publishes`: the typed model of what dependents receive (validated when a step returns; its
    declared fields are what early cutoff compares). `registers_versions`: a step's result names a
    version (StepResult.version) that the registry records, with aliases, promote and rollback;
    dependents build on the `champion`, not on the latest run. `gates_dependents`: a version carries
    a gate verdict, and a dependent that `serves` may take only a champion (policy gated_serving,
    through the whole upstream chain). `writes_paths`: the plugin's `writes(resource)` names files it
    writes in the repo, which other resources then must not read at plan time.
    """

    publishes: type[Published] | None = None
    registers_versions: bool = False
    gates_dependents: bool = False
    serves: bool = False
    writes_paths: bool = False
    replace_order: ReplaceOrder = ReplaceOrder.IN_PLACE


@dataclass(frozen=True, slots=True)
class Observation:
    """What the live object looks like now, as `refresh` found it."""

    exists: bool
    drift: str | None = None  # why it differs from state ("artifact deleted", "server down"), or None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FieldChange:
    path: str  # `spec.hyperparameters.learning_rate`
    before: Any
    after: Any
    forces_replace: bool


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[FieldChange, ...] = ()

    @classmethod
    def replacing(cls, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        """Every top-level spec field that changed, each forcing a replace: the diff of a plugin whose
        every field changes what it computes (a command, a dataset, a model)."""
        return cls(tuple(FieldChange(f"spec.{k}", before.get(k), after.get(k), True)
                         for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)))

    @property
    def forces_replace(self) -> bool:
        return any(c.forces_replace for c in self.changes)


@dataclass(frozen=True, slots=True)
class Estimate:
    seconds: float | None = None
    gpu_hours: float | None = None
    cost: float | None = None
    basis: str = ""  # how it was estimated: "last run of this fingerprint", "epochs x rows / throughput"


@dataclass(frozen=True)
class PlanContext:
    """What `inputs`, `refresh`, `estimate` and `progress` receive besides the resource.

    `digests` is the core's file-digest cache (.mlspec/cache/digests.db): an unchanged file costs a
    stat, and one cache serves every resource of a plan instead of one open per resource.
    """

    workdir: Path  # the spec repo
    digests: FileDigests
    artifacts: str = ".mlspec/artifacts"
    settings: BaseModel | None = None
    resources: Mapping[str, Resource] = field(default_factory=dict)  # the whole spec set, by address
    upstream: tuple[str, ...] = ()  # the addresses this resource depends on
    # Every path a `writes_paths` plugin writes -> the address that writes it (built once per plan):
    # a file another step writes is covered by that step's fingerprint, not read at plan time.
    written: Mapping[str, str] = field(default_factory=dict)
    # The outputs state recorded for this resource's upstreams (a Dataset's rows, for an estimate).
    upstream_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # mlspec.yaml's `paths.outside`: directories outside the repo that specs may read from.
    outside: tuple[str, ...] = ()


@runtime_checkable
class Plugin(Protocol):
    """What a plugin implements. Every method is called with resources of the plugin's kinds only.

    Optional, beside these: `capabilities` (default: none), `progress(resource, fingerprint,
    context) -> str | None` (what an earlier, stopped apply left: "resume from step 1,200 of
    3,000", shown in the plan), `notices(resource) -> Iterable[str]` (what a reviewer must know of
    a changing step: "its command gets the secret TOKEN"), and, with `capabilities.writes_paths`,
    `writes(resource) -> Iterable[str]` and `materialize(outputs, workdir, artifacts) -> list[str]`
    (write back from the artifact store the files it wrote that are missing here: a fresh clone;
    called before a dependent step runs, and by `mlspec pull`).
    """

    api_version: ClassVar[int]  # the contract version this plugin was written for: API_VERSION
    name: ClassVar[str]
    version: ClassVar[str]  # enters every fingerprint: a new version may change results
    settings_model: ClassVar[type[BaseModel] | None]  # validates `plugins.<name>` of mlspec.yaml

    def validate(self, resource: Resource) -> Iterable[Issue]:
        """Semantic checks beyond the schema, as issues with field paths (shown with positions). A
        plugin that declares a second parameter, `context`, gets a PlanContext (the repo, mlspec.yaml's
        `paths.outside`, its settings)."""
        ...

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """Cheap observations that enter the fingerprint, e.g. {file path: sha256}. No side effects."""
        ...

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        """Does the live object still exist and match state? Read-only. `details`: the outputs as found."""
        ...

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        """Which field changes between two specs are in-place updates and which force a replace."""
        ...

    def apply(self, request: StepRequest, runtime: Runtime) -> StepResult:
        """Create or update the live object. Idempotent and safe to retry after a crash. Everything
        the step may use is in `request` (serialisable: it may run in another process); `runtime`
        is how it reports and learns it was cancelled."""
        ...

    def destroy(self, request: StepRequest, runtime: Runtime) -> None:
        """Remove the live object recorded in `request.previous`. Idempotent: gone already is fine."""
        ...

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        """Expected duration, GPU hours and cost of applying, for the plan. A plugin that declares a
        third parameter, `context`, gets a PlanContext with its upstreams' recorded outputs (as pluggy
        passes a hook only the arguments it names)."""
        ...


NO_CAPABILITIES = Capabilities()


def capabilities(plugin: object) -> Capabilities:
    """A plugin's declared capabilities; none when it declares none."""
    found = getattr(plugin, "capabilities", None)
    return found if isinstance(found, Capabilities) else NO_CAPABILITIES


def materializer(plugin: object) -> Callable[..., Iterable[str]] | None:
    """A `writes_paths` plugin's optional `materialize(outputs, workdir, artifacts)`, or None."""
    found = getattr(plugin, "materialize", None)
    return found if callable(found) and capabilities(plugin).writes_paths else None
