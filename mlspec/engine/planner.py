"""Making a plan: the shell around the pure builder (mlspec/plan/builder.py).

It gathers what the builder needs and nothing more: each resource's plugin, the plugin's cheap
observations (file digests, through one stat cache for the whole plan), and what refresh finds of
the objects state records. It writes nothing but that digest cache; the state is only read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlspec.address import Address
from mlspec.discovery import Registry, plugin_settings, wants_context
from mlspec.errors import MlspecError, PluginError, SpecError
from mlspec.masking import Mask
from mlspec.plan.builder import Desired, build_plan, recomputes
from mlspec.plan.model import Action, Plan, Step
from mlspec.sdk.contract import PlanContext, Plugin, ReplaceOrder, capabilities
from mlspec.state.model import ResourceState, Status

if TYPE_CHECKING:
    from pydantic import BaseModel

    from mlspec.digests import FileDigests
    from mlspec.spec.specset import Resource, SpecSet
    from mlspec.state.base import StateReader
    from mlspec.state.model import LockInfo

T = TypeVar("T")


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()  # only these and what they depend on
    replace: tuple[str, ...] = ()  # recompute these even though nothing changed
    refresh: bool = True  # ask plugins what the live objects look like (drift)
    refresh_only: bool = False  # only bring state in line with the live objects
    prune: bool | None = None  # delete what left the specs; None: mlspec.yaml's `prune`
    allow_destroy: bool = False  # deletes of resources the protect policy guards

    def to_json(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "replace": list(self.replace), "refresh_only": self.refresh_only,
                "prune": self.prune, "allow_destroy": self.allow_destroy}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PlanOptions:
        """The options a saved plan was made with: applying it plans exactly so again."""
        return cls(tuple(data.get("targets", ())), tuple(data.get("replace", ())),
                   refresh_only=bool(data.get("refresh_only")), prune=data.get("prune"),
                   allow_destroy=bool(data.get("allow_destroy")))


@dataclass
class Planned:
    """A plan and everything apply needs to carry it out."""

    plan: Plan
    specs: SpecSet
    desired: dict[str, Desired]
    upstream: dict[str, tuple[str, ...]]  # address -> the addresses it depends on
    plugins: dict[str, Plugin]  # kind -> plugin
    settings: dict[str, BaseModel | None] = field(default_factory=dict)  # plugin name -> settings
    mask: Mask = field(default_factory=Mask)  # the values of every ${env:NAME} the specs name
    lock: LockInfo | None = None  # who held the state's lock as the plan was made (an apply in progress)

    def plugin_of(self, address: str) -> Plugin:
        return self.plugins[Address(address).kind]


def make_plan(
    specs: SpecSet,
    store: StateReader,
    registry: Registry,
    digests: FileDigests,
    options: PlanOptions = PlanOptions(),
    *,
    on_progress: Callable[[str], None] | None = None,
) -> Planned:
    project = specs.project
    workdir = project.root
    mask = secret_mask(specs)  # first: a plugin's error below may carry a secret too
    notify = on_progress or (lambda _: None)
    order = [r.address for r in specs]
    upstream = specs.graph.direct_upstream()
    selected = _selected(specs, options.targets) if options.targets else set(order)
    for address in options.replace:
        if address not in specs.resources:
            raise MlspecError(f"--replace {address}: no such resource" + _hint(address, order))

    plugins, unmanaged = _plugins(specs, registry, order, upstream)
    settings = {p.name: plugin_settings(p, (project.setting("plugins") or {}).get(p.name)) for p in plugins.values()}
    outside = tuple(project.setting("paths", "outside"))
    artifacts = str(project.setting("artifacts", "url"))
    _check_resources(specs, plugins, digests, settings, outside)

    state = {entry.address: entry for entry in store.list()}
    written = _written(specs, plugins)
    desired: dict[str, Desired] = {}
    notify("observing inputs")
    for address in order:
        if address not in selected or address in unmanaged:
            continue
        resource = specs.resources[address]
        plugin = plugins[resource.kind]
        context = PlanContext(workdir, digests, artifacts, settings[plugin.name], specs.resources, upstream[address],
                              written, outside=outside)
        inputs = dict(_call(plugin, "inputs", address, plugin.inputs, resource, context))
        desired[address] = Desired(
            address, resource.kind, resource.metadata_data(), resource.spec_data(),
            upstream=upstream[address], plugin=plugin.name, plugin_version=plugin.version, inputs=inputs,
        )

    drift: dict[str, str] = {}
    observed: dict[str, dict[str, Any] | None] = {}
    if options.refresh or options.refresh_only:
        notify("refreshing")
        for address, want in desired.items():
            previous = state.get(address)
            if previous is None or previous.status is not Status.APPLIED:
                continue
            resource, plugin = specs.resources[address], plugins[want.kind]
            context = PlanContext(workdir, digests, artifacts, settings[plugin.name], specs.resources,
                                  upstream[address], written, outside=outside)
            seen = _call(plugin, "refresh", address, plugin.refresh, resource, previous, context)
            if not seen.exists or seen.drift:
                drift[address] = seen.drift or "the live object is gone"
                observed[address] = dict(seen.details) if seen.exists else None

    in_scope = {a: s for a, s in state.items() if a in selected or not options.targets}
    if options.refresh_only:
        plan = _refresh_only(desired, state, drift, observed, store)
    else:
        prune = project.setting("prune") if options.prune is None else options.prune
        managed_state = {a: s for a, s in in_scope.items() if a not in unmanaged}
        plan = build_plan(
            list(desired.values()), managed_state, store.meta(), prune=bool(prune) and not options.targets,
            replace=options.replace, drift=drift, in_place=_in_place(specs, plugins),
            requested=_requested(state, desired),
        )
        plan, waiting = _waiting_for_champions(plan, state, upstream, plugins)
        unmanaged |= waiting
        plan = _with_replace_orders(plan, state, plugins)
        plan = _with_notices(plan, specs, plugins, digests)
        plan = _with_estimates(plan, specs, plugins, state, digests, upstream)
        plan = _order_deletes(plan, state)
        _check_deletable(plan, registry, plugins)
        _check_policies(plan, specs, state, plugins, options.allow_destroy)
    plan = replace(plan, unmanaged=tuple(sorted(unmanaged.items())), options=options.to_json())
    return Planned(plan, specs, desired, upstream, plugins, settings, mask)


def secret_mask(specs: SpecSet) -> Mask:
    """Every value any spec or mlspec.yaml names as `${env:NAME}`; made the process's mask too."""
    from mlspec import masking

    config = specs.project.config
    names = masking.names_in(config.model_dump(mode="json") if hasattr(config, "model_dump") else config)
    for resource in specs.resources.values():
        text = resource.envelope.spec.model_dump_json()  # pydantic's serializer: 4x a walk of spec_data()
        if "${env:" in text:
            names.update(masking.ENV_REF.findall(text))
    found = masking.Mask.of_names(sorted(names))
    masking.use(found)
    return found


def _written(specs: SpecSet, plugins: Mapping[str, Plugin]) -> dict[str, str]:
    """Every path a `writes_paths` plugin's resource writes -> that resource (built once per plan)."""
    out: dict[str, str] = {}
    for resource in specs.resources.values():
        plugin = plugins.get(resource.kind)
        if plugin is not None and capabilities(plugin).writes_paths:
            for path in _call(plugin, "writes", resource.address, plugin.writes, resource):  # type: ignore[attr-defined]
                out[str(path)] = resource.address
    return out


def _with_notices(plan: Plan, specs: SpecSet, plugins: Mapping[str, Plugin], digests: FileDigests) -> Plan:
    """A plugin's optional `notices(resource)`: what a reviewer must know of a changing step."""
    steps = []
    context = PlanContext(specs.project.root, digests, outside=tuple(specs.project.setting("paths", "outside")))
    for step in plan.steps:
        plugin = plugins.get(Address(step.address).kind)
        notices = getattr(plugin, "notices", None)
        if notices is not None and step.action.is_change and step.address in specs.resources:
            extra = (context,) if wants_context(notices) else ()
            found = tuple(str(n) for n in _call(plugin, "notices", step.address, notices,  # type: ignore[arg-type]
                                                specs.resources[step.address], *extra))
            if found:
                step = replace(step, notes=found)
        steps.append(step)
    return replace(plan, steps=tuple(steps))


def _with_replace_orders(plan: Plan, state: Mapping[str, ResourceState], plugins: Mapping[str, Plugin]) -> Plan:
    """How each replace of an existing object is carried out, decided now so a reviewer sees it."""
    steps = []
    for step in plan.steps:
        if step.action is Action.REPLACE and step.address in state:
            order = capabilities(plugins[Address(step.address).kind]).replace_order
            if order is not ReplaceOrder.IN_PLACE:
                step = replace(step, replace_order=order.value)
        steps.append(step)
    return replace(plan, steps=tuple(steps))


def _selected(specs: SpecSet, targets: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for text in targets:
        address = specs.graph.resolve(text)
        if address is None:
            raise MlspecError(f"--target {text}: no such resource" + _hint(text, list(specs.resources)))
        out |= specs.graph.upstream(address)
    return out


def _hint(text: str, known: list[str]) -> str:
    from mlspec.spec.suggest import did_you_mean

    hint = did_you_mean(text, known)
    return f"; {hint}" if hint else ""


def _plugins(
    specs: SpecSet, registry: Registry, order: list[str], upstream: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, Plugin], dict[str, str]]:
    """The plugin of every kind in use; resources no installed plugin manages, and their dependents."""
    plugins: dict[str, Plugin] = {}
    unmanaged: dict[str, str] = {}
    for address in order:
        kind = specs.resources[address].kind
        if kind not in plugins and registry.has(kind):
            plugins[kind] = registry.for_kind(kind)
        if kind not in plugins:
            unmanaged[address] = f"no installed plugin manages kind {kind}"
            continue
        waits = [u for u in upstream[address] if u in unmanaged]
        if waits:
            unmanaged[address] = f"depends on {waits[0]}, which no installed plugin manages"
    return plugins, unmanaged


def _check_resources(specs: SpecSet, plugins: Mapping[str, Plugin], digests: FileDigests,
                     settings: Mapping[str, BaseModel | None], outside: tuple[str, ...]) -> None:
    """The plugins' own checks, reported like any spec diagnostic: every problem, with positions."""
    from mlspec.spec.specset import issue_diagnostics

    diagnostics = []
    for address, resource in specs.resources.items():
        plugin = plugins.get(resource.kind)
        if plugin is not None:
            extra = (PlanContext(specs.project.root, digests, settings=settings.get(plugin.name),
                                 resources=specs.resources, outside=outside),) if wants_context(plugin.validate) else ()
            issues = list(_call(plugin, "validate", address, plugin.validate, resource, *extra))
            diagnostics.extend(issue_diagnostics(resource, issues))
    if diagnostics:
        raise SpecError(diagnostics)


def _call(plugin: Plugin, method: str, address: str, fn: Callable[..., T], *args: Any) -> T:
    """A plugin's exception is a failure of that plugin on that resource, never a traceback."""
    try:
        return fn(*args)
    except MlspecError:
        raise
    except Exception as err:
        raise PluginError(f"plugin {plugin.name}: {method} of {address} failed: {type(err).__name__}: {err}") from err


def _requested(state: Mapping[str, ResourceState], desired: Mapping[str, Any]) -> dict[str, str]:
    """Replacements other resources asked for (a Monitor that found drift asks for its Model's retrain),
    each still standing while the asked-for resource was last written before the request."""
    from mlspec.sdk.monitoring import REPLACE_REQUESTS

    found: dict[str, str] = {}
    for record in state.values():
        for ask in record.outputs.get(REPLACE_REQUESTS) or ():
            target = state.get(str(ask.get("address")))
            if target is not None and target.address in desired and target.updated_at < str(ask.get("at")):
                found[target.address] = str(ask.get("because") or f"{record.address} asked for it")
    return found


def _in_place(specs: SpecSet, plugins: Mapping[str, Plugin]) -> Callable[[Desired, Mapping[str, Any]], bool]:
    def check(want: Desired, before: Mapping[str, Any]) -> bool:
        plugin = plugins[want.kind]
        resource = specs.resources[want.address]
        diff = _call(plugin, "diff", want.address, plugin.diff, resource, before, want.spec)
        return bool(diff.changes) and not diff.forces_replace

    return check


def _waiting_for_champions(
    plan: Plan, state: Mapping[str, ResourceState], upstream: Mapping[str, tuple[str, ...]],
    plugins: Mapping[str, Plugin],
) -> tuple[Plan, dict[str, str]]:
    """Changes that would build on a resource that registers versions and has no champion (none of its
    versions passed its gates, none was promoted): left out of the plan, and said why, until there is
    one to build on."""
    from mlspec.registry import PUBLISHED

    steps = {s.address: s for s in plan.steps}
    waiting: dict[str, str] = {}
    for step in plan.steps:
        if not step.action.is_change or step.action is Action.DELETE:
            continue
        for parent in upstream.get(step.address, ()):
            if parent in waiting:
                waiting[step.address] = f"depends on {parent}, which waits for a champion"
                break
            recorded, moving = state.get(parent), steps.get(parent)
            owner = plugins.get(Address(parent).kind)
            registers = owner is not None and capabilities(owner).registers_versions
            if (registers and recorded is not None and recorded.outputs.get(PUBLISHED) == "" and moving is not None
                    and not recomputes(moving)):
                waiting[step.address] = (f"waits for a champion of {parent}: none of its versions passed its gates "
                                         "(`mlspec models show` says why; `mlspec promote` overrides)")
                break
    if not waiting:
        return plan, waiting
    return replace(plan, steps=tuple(s for s in plan.steps if s.address not in waiting)), waiting


def _with_estimates(
    plan: Plan, specs: SpecSet, plugins: Mapping[str, Plugin], state: Mapping[str, ResourceState],
    digests: FileDigests, upstream: Mapping[str, tuple[str, ...]],
) -> Plan:
    steps = []
    for step in plan.steps:
        if step.action in (Action.CREATE, Action.REPLACE) and step.address in specs.resources:
            resource = specs.resources[step.address]
            plugin = plugins[resource.kind]
            parents = upstream.get(step.address, ())
            context = PlanContext(specs.project.root, digests, str(specs.project.setting("artifacts", "url")),
                                  resources=specs.resources, upstream=parents,
                                  upstream_outputs={u: state[u].outputs for u in parents if u in state},
                                  outside=tuple(specs.project.setting("paths", "outside")))
            extra = (context,) if wants_context(plugin.estimate) else ()
            guess = _call(plugin, "estimate", step.address, plugin.estimate, resource, state.get(step.address),
                          *extra)
            step = replace(step, estimate={"seconds": guess.seconds, "gpu_hours": guess.gpu_hours,
                                           "cost": guess.cost, "basis": guess.basis})
            progress = getattr(plugin, "progress", None)
            if progress is not None and step.fingerprint:
                left = _call(plugin, "progress", step.address, progress, resource, step.fingerprint, context)
                if left:
                    step = replace(step, causes=(*step.causes, str(left)))
        steps.append(step)
    return replace(plan, steps=tuple(steps))


def _check_deletable(plan: Plan, registry: Registry, plugins: dict[str, Plugin]) -> None:
    for step in plan.steps:
        kind = Address(step.address).kind
        if step.action is Action.DELETE and kind not in plugins:
            if not registry.has(kind):
                raise PluginError(f"cannot delete {step.address}: no installed plugin manages kind {kind}")
            plugins[kind] = registry.for_kind(kind)


def _order_deletes(plan: Plan, state: Mapping[str, ResourceState]) -> Plan:
    """Delete dependents before what they depend on. The specs are gone, so the references come from
    the specs state recorded when each was applied."""
    deletes = [s for s in plan.steps if s.action is Action.DELETE]
    if len(deletes) < 2:
        return plan
    from mlspec.spec.kinds.base import iter_refs

    gone = {s.address for s in deletes}
    by_name: dict[str, list[str]] = {}
    for address in gone:
        by_name.setdefault(Address(address).name, []).append(address)
    needs: dict[str, set[str]] = {}
    for address in gone:
        try:
            envelope = _recorded(address, state.get(address))
            refs = [r.value for r in iter_refs(envelope)]
        except Exception:  # a record older than its kind's model: no known edges, deleted last
            refs = []
        needs[address] = {r if "/" in r else (by_name.get(r) or [""])[0] for r in refs} & gone
    from mlspec.graph import topological

    ordered = topological(gone, needs)  # each before what it needs: dependents are deleted first
    ordered += sorted(gone - set(ordered))  # a cycle in old records: the rest by address
    position = {a: i for i, a in enumerate(ordered)}
    steps = sorted(deletes, key=lambda s: position[s.address])
    return replace(plan, steps=(*[s for s in plan.steps if s.action is not Action.DELETE], *steps))


def _recorded(address: str, previous: ResourceState | None) -> Any:
    from mlspec.spec.kinds import KINDS

    recorded = previous.spec if previous is not None else {}
    kind = recorded.get("kind", Address(address).kind)
    return KINDS[kind].model_validate(
        {"apiVersion": "mlspec/v1", "kind": kind, "spec": recorded.get("spec") or {},
         "metadata": recorded.get("metadata") or {"name": Address(address).name}},
        strict=False,
    )


def _check_policies(
    plan: Plan, specs: SpecSet, state: Mapping[str, ResourceState], plugins: Mapping[str, Plugin],
    allow_destroy: bool,
) -> None:
    """protect and gated_serving, each through the whole graph: a Service two hops from its Model
    (Service -> Optimization -> Model) is gated by it, and what a protected resource was built from
    is protected with it."""
    from mlspec.policy import plan_diagnostics, rules

    policies = rules(specs.project.setting("policies"))
    if not policies.get("protect") and not policies.get("gated_serving"):
        return

    def declares(address: str, what: str) -> bool:
        plugin = plugins.get(Address(address).kind)
        return plugin is not None and bool(getattr(capabilities(plugin), what))

    moving = {s.address for s in plan.steps if s.action in (Action.CREATE, Action.REPLACE)}
    deleted = [s.address for s in plan.steps if s.action is Action.DELETE and s.address in state]
    deletes = []
    if deleted and policies.get("protect"):
        built_from = _recorded_dependents(state)
        for address in deleted:
            # Protected resources that stay as they are and were built from it (an orphan kept by a
            # plan without prune, say): one being recomputed now no longer needs it.
            guards = sorted(a for a in _closure(address, built_from) if a not in deleted and a not in moving
                            and _protected(policies, _labels(a, specs, state)))
            deletes.append((address, _labels(address, specs, state), guards))
    serving = [
        (s.address, ancestor, _verdict(state.get(ancestor), specs.resources.get(s.address)))
        for s in plan.steps if s.action.is_change and s.action is not Action.DELETE and declares(s.address, "serves")
        for ancestor in sorted(specs.graph.upstream(s.address) - {s.address})
        if declares(ancestor, "gates_dependents") and ancestor not in moving
    ]
    found = plan_diagnostics(policies, deletes, serving, allow_destroy=allow_destroy)
    if found:
        raise SpecError(found)


def _verdict(gated: ResourceState | None, server: Resource | None) -> bool | str | None:
    """May `server` serve the gated upstream state records? None: not applied yet; False: no champion;
    "ungated": a champion no gate judged (its run recorded an empty list of gates), unless the server's
    spec says `allow_ungated: true`."""
    from mlspec.registry import servable

    if gated is None:
        return None
    if not servable(gated.outputs):
        return False
    allowed = bool(getattr(server.envelope.spec, "allow_ungated", False)) if server is not None else False
    return "ungated" if gated.outputs.get("gates") == [] and not allowed else True


def _labels(address: str, specs: SpecSet, state: Mapping[str, ResourceState]) -> Mapping[str, str]:
    if address in specs.resources:
        return specs.resources[address].metadata_data().get("labels") or {}
    recorded = state.get(address)
    return ((recorded.spec.get("metadata") or {}).get("labels") or {}) if recorded is not None else {}


def _protected(policies: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    from mlspec.policy import protected

    return protected(policies, labels)


def _recorded_dependents(state: Mapping[str, ResourceState]) -> dict[str, set[str]]:
    """address -> the addresses whose recorded specs reference it: what was built from it."""
    from mlspec.spec.kinds.base import iter_refs

    by_name: dict[str, list[str]] = {}
    for address in state:
        by_name.setdefault(Address(address).name, []).append(address)
    out: dict[str, set[str]] = {}
    for address, recorded in state.items():
        try:
            refs = [r.value for r in iter_refs(_recorded(address, recorded))]
        except Exception:  # a record older than its kind's model: no known edges
            refs = []
        for ref in refs:
            for target in ([ref] if "/" in ref else by_name.get(ref, [])):
                out.setdefault(target, set()).add(address)
    return out


def _closure(address: str, edges: Mapping[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = [address]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _refresh_only(
    desired: Mapping[str, Desired],
    state: Mapping[str, ResourceState],
    drift: Mapping[str, str],
    observed: Mapping[str, dict[str, Any] | None],
    store: StateReader,
) -> Plan:
    meta = store.meta()
    steps = []
    for address in desired:
        if address in drift:
            steps.append(Step(address, Action.READ, (f"drift: {drift[address]}",),
                              fingerprint=state[address].fingerprint, observed=observed[address]))
        else:
            steps.append(Step(address, Action.NOOP, (), fingerprint=state[address].fingerprint
                              if address in state else None))
    return Plan(meta.lineage, meta.serial, tuple(steps))


def digests_for(root: Path) -> FileDigests:
    from mlspec.digests import FileDigests

    return FileDigests(root / ".mlspec" / "cache" / "digests.db")


def resource_of(planned: Planned, address: str, previous: ResourceState | None) -> Resource:
    """The resource a step acts on; for a delete, rebuilt from what state recorded of it."""
    if address in planned.specs.resources:
        return planned.specs.resources[address]
    from mlspec.spec.specset import Resource

    return Resource(address, _recorded(address, previous), "(state)", 0)
