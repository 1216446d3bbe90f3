"""The plugin contract: how mlspec asks a plugin about, and acts on, the resources of its kinds.

In the spirit of a Terraform provider. Each kind has exactly one owner, so dispatch is 1:1 and the
contract is a typed Protocol (mypy checks a plugin's signatures), not pluggy's fan-out hooks. Its
discipline is pluggy's all the same: one contract module, discovery through entry points, built-in
plugins registered exactly like third-party ones, and checks when a plugin is loaded, not when it
is first called.

Registration: an entry point in the group `mlspec.plugins`, named by the kind it owns:

    [project.entry-points."mlspec.plugins"]
    Task = "mlspec_shell:ShellPlugin"

Naming entry points by kind lets mlspec see two plugins claiming one kind without importing either,
and import only the plugins of kinds the specs use. docs/plugins.md walks through a whole plugin.

Plugins import heavy libraries (torch, bentoml) inside their methods only: `mlspec validate` and
`mlspec plan` must stay fast on a laptop without them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from mlspec.errors import MlspecError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlspec.digests import FileDigests
    from mlspec.spec.kinds.base import Issue
    from mlspec.spec.specset import Resource
    from mlspec.state.model import ResourceState

API_VERSION = 1
ENTRY_POINT_GROUP = "mlspec.plugins"
METHODS = ("validate", "inputs", "refresh", "diff", "apply", "destroy", "estimate")
REPLACE_ORDERS = ("in_place", "create_before_destroy", "destroy_before_create")

Outputs = dict[str, Any]  # JSON values: artifact URIs, digests, metrics, endpoints
# Reserved output keys (mlspec/registry.py): "register" asks the engine to record a version in the
# model registry ({"record": {...}, "aliases": [...]}); "held" (a reason) keeps the step's dependents
# from running on its result; "published", "champion", "aliases" and "version" are the engine's.


class PluginError(MlspecError):
    """A plugin cannot be loaded or broke the contract (wrong API version, duplicate kind, ...)."""


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
    """What `inputs` and `refresh` receive besides the resource: where to look, and the shared stat cache.

    `digests` is the core's file-digest cache (.mlspec/cache/digests.db): an unchanged file costs a
    stat, and one cache serves every resource of a plan instead of one open per resource.
    """

    workdir: Path  # the spec repo
    digests: FileDigests
    artifacts: str = ".mlspec/artifacts"
    settings: BaseModel | None = None
    resources: Mapping[str, Resource] = field(default_factory=dict)  # the whole spec set, by address
    upstream: tuple[str, ...] = ()  # the addresses this resource depends on
    # Every path a Task of the spec set lists in `outs` -> that Task's address (built once per plan):
    # a file another step writes is covered by that step's fingerprint, not read at plan time.
    written: Mapping[str, str] = field(default_factory=dict)
    # For `estimate` only: the outputs state recorded for this resource's upstreams (a Dataset's rows).
    upstream_outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class StepInterrupted(MlspecError):
    """Raised by a plugin that stopped because `step.cancelled` was set: the step is recorded interrupted."""


@dataclass(frozen=True)
class StepContext:
    """Everything `apply` and `destroy` receive: the resource, its upstreams' outputs, where to work."""

    resource: Resource
    upstream_outputs: Mapping[str, Outputs]  # address -> outputs, for every resource it depends on
    previous: ResourceState | None  # what state recorded last time (None on create)
    workdir: Path  # the spec repo
    artifacts: str  # the artifact store: a local path or an fsspec URL
    settings: BaseModel | None  # this plugin's validated settings from mlspec.yaml
    fingerprint: str = ""  # the step's data fingerprint: the key of run caches
    log: Callable[[str], None] = print
    # Set on the second Ctrl-C: stop now (kill child processes), raise StepInterrupted. The first
    # Ctrl-C only stops new steps from starting; steps in flight are left to finish.
    cancelled: threading.Event = field(default_factory=threading.Event)
    # This address's entry in the model registry (versions, aliases: mlspec/registry.py), read when
    # the apply began; None when it has registered nothing. Read-only: a plugin registers a version
    # by returning outputs["register"], and the engine records it with the step.
    registry: Mapping[str, Any] | None = None
    # Progress of a long step (steps done, steps in all, "loss 0.41 · 1,234 samples/s"): a bar with an
    # ETA on a terminal. Optional to call; calls more often than 10 a second are wasted.
    meter: Callable[[int, int, str], None] | None = None


@runtime_checkable
class Plugin(Protocol):
    """What a plugin implements. Every method is called with resources of the plugin's kinds only."""

    api_version: ClassVar[int]  # the contract version this plugin was written for: API_VERSION
    name: ClassVar[str]
    version: ClassVar[str]  # enters every fingerprint: a new version may change results
    settings_model: ClassVar[type[BaseModel] | None]  # validates `plugins.<name>` of mlspec.yaml
    # How a replace is carried out (optional; default "in_place"): "in_place" calls apply with
    # `previous` set and lets the plugin overwrite; "create_before_destroy" (serving: no downtime)
    # applies the new object, then destroys the previous one; "destroy_before_create" the reverse.
    # Optional too: `progress(resource, fingerprint, context) -> str | None`, what an earlier, stopped
    # apply left of this step ("resume from step 1,200 of 3,000"), shown in the plan.

    def validate(self, resource: Resource) -> Iterable[Issue]:
        """Semantic checks beyond the schema, as issues with field paths (shown with positions)."""
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

    def apply(self, step: StepContext) -> Outputs:
        """Create or update the live object. Idempotent and safe to retry after a crash."""
        ...

    def destroy(self, step: StepContext) -> None:
        """Remove the live object recorded in `step.previous`. Idempotent: gone already is fine."""
        ...

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        """Expected duration, GPU hours and cost of applying, for the plan. A plugin that declares a
        third parameter, `context`, gets a PlanContext with its upstreams' recorded outputs (as pluggy
        passes a hook only the arguments it names)."""
        ...


class Registry:
    """Plugins by kind, discovered from entry points and loaded on first use."""

    def __init__(self, points: Iterable[EntryPoint] | None = None, prefer: Mapping[str, str] | None = None) -> None:
        """`prefer`: kind -> distribution name, from mlspec.yaml's `plugin_for`, when several claim a kind."""
        self._prefer = {kind: _normal(dist) for kind, dist in (prefer or {}).items()}
        self._points: dict[str, list[EntryPoint]] = {}
        for point in entry_points(group=ENTRY_POINT_GROUP) if points is None else points:
            self._points.setdefault(point.name, []).append(point)
        self._loaded: dict[str, Plugin] = {}

    def kinds(self) -> list[str]:
        return sorted(self._points)

    def has(self, kind: str) -> bool:
        return kind in self._points

    def for_kind(self, kind: str) -> Plugin:
        if kind in self._loaded:
            return self._loaded[kind]
        points = self._points.get(kind, [])
        if not points:
            raise PluginError(f"no plugin is installed for kind `{kind}` (entry point group {ENTRY_POINT_GROUP})")
        if len({p.value for p in points}) > 1:
            chosen = [p for p in points if kind in self._prefer and _normal(_dist_name(p)) == self._prefer[kind]]
            if len(chosen) != 1:
                owners = ", ".join(f"{p.value} (from {_distribution(p)})" for p in points)
                raise PluginError(
                    f"kind `{kind}` is claimed by several plugins: {owners}; choose one in mlspec.yaml "
                    f"(`plugin_for: {{{kind}: <distribution>}}`) or uninstall the others"
                )
            points = chosen
        plugin = load_plugin(points[0])
        self._loaded[kind] = plugin
        return plugin


def load_plugin(point: EntryPoint) -> Plugin:
    """Import and check a plugin: its contract version and that it implements every method."""
    where = f"{point.value} (from {_distribution(point)})"
    try:
        cls = point.load()
        plugin = cls()
    except Exception as err:
        raise PluginError(f"plugin {where} failed to load: {type(err).__name__}: {err}") from err
    version = getattr(plugin, "api_version", None)
    if version != API_VERSION:
        raise PluginError(f"plugin {where} implements contract version {version}; this mlspec speaks {API_VERSION}")
    missing = [m for m in METHODS if not callable(getattr(plugin, m, None))]
    missing += [a for a in ("name", "version") if not isinstance(getattr(plugin, a, None), str)]
    if missing:
        raise PluginError(f"plugin {where} does not implement {', '.join(missing)}")
    if replace_order(plugin) not in REPLACE_ORDERS:
        raise PluginError(f"plugin {where}: replace_order must be one of {', '.join(REPLACE_ORDERS)}")
    return plugin  # type: ignore[no-any-return]


def wants_context(method: Callable[..., Any]) -> bool:
    """Does this plugin method declare a `context` parameter (an optional one of the contract)?"""
    import inspect

    try:
        return "context" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


def replace_order(plugin: Plugin) -> str:
    return str(getattr(plugin, "replace_order", "in_place"))


def plugin_settings(plugin: Plugin, raw: Mapping[str, Any] | None) -> BaseModel | None:
    """Validate `plugins.<name>` of mlspec.yaml against the plugin's settings model, every error at once."""
    model = plugin.settings_model
    if model is None:
        if raw:
            raise PluginError(f"mlspec.yaml: plugins.{plugin.name}: plugin `{plugin.name}` takes no settings")
        return None
    from pydantic import ValidationError

    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as err:
        problems = "; ".join(
            f"plugins.{plugin.name}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise PluginError(f"mlspec.yaml: {problems}") from None


def _dist_name(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return str(dist.name) if dist is not None else ""


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _distribution(point: EntryPoint) -> str:
    dist = getattr(point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown distribution"
