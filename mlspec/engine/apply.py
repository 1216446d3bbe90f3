"""Carrying out a plan through the plugins: what each step does, and what state keeps of it.

The executor (executor.py) decides when each step runs and commits it; this module decides what a
step does (which plugin call, in the replace order the plan recorded), builds the step's request
(plain data: it could run in another process) and its runtime handle, checks what the plugin
returned against what its kind publishes, and turns the result into the row and the registry write
the store commits together. The caller holds the state lock (mlspec/engine/session.py does).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from mlspec import registry
from mlspec.address import Address
from mlspec.engine.executor import ApplyResult, Committed, Hooks, Outputs, execute, reason
from mlspec.engine.planner import Planned, resource_of
from mlspec.errors import PluginError, PolicyError, StalePlanError
from mlspec.plan.builder import material
from mlspec.plan.model import Action, Plan, Step
from mlspec.sdk.contract import Capabilities, ReplaceOrder, capabilities, materializer
from mlspec.sdk.step import Runtime, StepRequest, StepResult
from mlspec.state.base import StateStore
from mlspec.state.model import ResourceState, Status, now

if TYPE_CHECKING:
    from mlspec.engine.reporter import Reporter
    from mlspec.sdk.contract import Plugin


def _same_state(saved: Plan, fresh: Plan) -> bool:
    """The lineage matches, or the plan was made before any state existed and this state is new."""
    return saved.lineage == fresh.lineage or (saved.lineage == "" and saved.serial == 0 and fresh.serial == 0)


def already_applied(saved: Plan, fresh: Plan) -> bool:
    """Was this saved plan carried out already? Then applying it again is a no-op, not an error."""
    if saved.lineage not in (fresh.lineage, "") or fresh.has_changes or not saved.has_changes:
        return False
    now = {s.address: s.fingerprint for s in fresh.steps}
    return all(now.get(s.address) == s.fingerprint for s in saved.steps if s.action is not Action.DELETE) and all(
        s.address not in now for s in saved.steps if s.action is Action.DELETE
    )


def check_saved(saved: Plan, fresh: Plan) -> None:
    """Refuse a saved plan when state or specs moved since it was made, saying what moved."""
    if not _same_state(saved, fresh):
        raise StalePlanError(
            f"the plan was made against another state (lineage {saved.lineage[:12]}, this state is "
            f"{fresh.lineage[:12]}): make a new plan"
        )
    if saved.serial != fresh.serial:
        raise StalePlanError(
            f"the state changed since the plan was made (serial {saved.serial} -> {fresh.serial}): make a new plan"
        )
    before = {s.address: s for s in saved.steps}
    after = {s.address: s for s in fresh.steps}
    moved = []
    for address in sorted(set(before) | set(after)):
        old, new = before.get(address), after.get(address)
        if old is None:
            moved.append(f"{address} (added)")
        elif new is None:
            moved.append(f"{address} (removed)")
        elif (old.fingerprint, old.action) != (new.fingerprint, new.action):
            fp = f"fingerprint {(old.fingerprint or '-')[:8]} -> {(new.fingerprint or '-')[:8]}"
            moved.append(f"{address} ({fp})" if old.fingerprint != new.fingerprint else
                         f"{address} ({old.action.value} -> {new.action.value})")
    if moved:
        shown = ", ".join(moved[:10]) + (f" and {len(moved) - 10} more" if len(moved) > 10 else "")
        raise StalePlanError(f"the specs or their inputs changed since the plan was made: {shown}; make a new plan")


class _Steps(Hooks):
    """One apply's steps: requests out, results in, rows and registry writes for the executor."""

    def __init__(self, planned: Planned, store: StateStore, *, commit: str | None, abort: threading.Event,
                 reporter: Reporter | None, runner: Executor | None, run: str = "") -> None:
        self.planned = planned
        self.run_id = run
        self.mask = planned.mask
        self.commit = commit
        self.abort = abort
        self.reporter = reporter
        self.runner = runner
        self.previous = {entry.address: entry for entry in store.list()}
        self.versions = store.registry()  # read here: steps run in worker threads
        self.live: dict[str, Outputs] = {a: e.outputs for a, e in self.previous.items()}
        project = planned.specs.project
        self.root = project.root
        self.artifacts = str(project.setting("artifacts", "url"))
        self.outside = tuple(project.setting("paths", "outside"))
        self.prefer = dict(project.setting("plugin_for") or {})
        # Per plugin, once: what every request carries of its settings (JSON).
        self.settings = {name: model.model_dump(mode="json") if model is not None else None
                         for name, model in planned.settings.items()}
        from mlspec.policy import rules

        self.gated = bool(rules(project.setting("policies")).get("gated_serving"))

    def capabilities(self, address: str) -> Capabilities:
        return capabilities(self.planned.plugin_of(address))

    # -- what a dependent receives ---------------------------------------------------------------

    def handed_on(self, address: str, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """A resource that registers versions hands on its champion, not its latest run."""
        if self.capabilities(address).registers_versions:
            return registry.view(outputs)
        return dict(outputs)

    def published_digest(self, address: str, outputs: Mapping[str, Any]) -> str | None:
        model = self.capabilities(address).publishes
        if model is None or not outputs:
            return None
        try:
            return model.model_validate(self.handed_on(address, outputs)).content_digest()
        except ValueError:
            return None

    # -- running a step (worker threads) ---------------------------------------------------------

    def request(self, step: Step, upstream: Mapping[str, Outputs], before: ResourceState | None) -> StepRequest:
        plugin = self.planned.plugin_of(step.address)
        entry = self.versions.get(step.address)
        return StepRequest(
            resource_of(self.planned, step.address, before), upstream, before, self.root, self.artifacts,
            step.fingerprint or "", self.settings.get(plugin.name), entry.to_json() if entry is not None else None,
            self.run_id, self.outside,
        )

    def runtime(self, step: Step) -> Runtime:
        reporter = self.reporter
        if reporter is None:
            return Runtime(self.abort, lambda _line: None)
        return Runtime(self.abort, reporter.log, reporter.meter(step.address))

    def run(self, step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        inputs = {address: self.handed_on(address, out) for address, out in upstream.items()}
        if self.gated and step.action is not Action.DELETE and self.capabilities(step.address).serves:
            self._check_servable(step)
        before = self.previous.get(step.address)
        plugin = self.planned.plugin_of(step.address)
        if step.action is Action.DELETE:
            self._destroy(plugin, step, inputs, before)
            return StepResult()
        self._materialize_upstream(step)
        if step.action is Action.UPDATE and before is not None and before.fingerprint == step.fingerprint:
            # Metadata only: state changes, the live object does not, and nothing new reaches dependents.
            return StepResult({k: v for k, v in before.outputs.items() if k != registry.HELD})
        order = ReplaceOrder(step.replace_order or ReplaceOrder.IN_PLACE) if before is not None else None
        if order is ReplaceOrder.DESTROY_BEFORE_CREATE:
            self._destroy(plugin, step, inputs, before)
            return self._apply(plugin, step, inputs, None)
        if order is ReplaceOrder.CREATE_BEFORE_DESTROY:
            made = self._apply(plugin, step, inputs, None)
            self._destroy(plugin, step, inputs, before)
            return made
        return self._apply(plugin, step, inputs, before)

    def _materialize_upstream(self, step: Step) -> None:
        """A step that runs may read files its upstreams wrote in the repo; on a fresh clone they are in
        the artifact store only. Their plugins write them back first (only what is missing)."""
        for upstream in self.planned.upstream.get(step.address, ()):
            materialize = materializer(self.planned.plugins.get(Address(upstream).kind))
            outputs = self.live.get(upstream)
            if materialize is not None and outputs:
                materialize(outputs, self.root, self.artifacts)

    def _check_servable(self, step: Step) -> None:
        """The plan checked this from state; a Model retrained in this very apply is checked here,
        through the whole upstream chain (Service -> Optimization -> Model)."""
        for ancestor in sorted(self.planned.specs.graph.upstream(step.address) - {step.address}):
            if not self.capabilities(ancestor).gates_dependents:
                continue
            outputs = self.live.get(ancestor)
            if outputs is not None and not registry.servable(outputs):
                raise PolicyError(f"policy gated_serving: {step.address} would serve {ancestor}, whose evaluation "
                                  "gates did not pass; it keeps serving what it served")
            spec = self.planned.specs.resources[step.address].envelope.spec
            if outputs is not None and outputs.get("gates") == [] and not getattr(spec, "allow_ungated", False):
                raise PolicyError(f"policy gated_serving: {step.address} would serve {ancestor}, whose champion "
                                  f"passed no gate (it has no evaluation gates); set `allow_ungated: true` on "
                                  f"{step.address} to serve it anyway")

    def _apply(self, plugin: Plugin, step: Step, inputs: Mapping[str, Outputs],
               before: ResourceState | None) -> StepResult:
        request = self.request(step, inputs, before)
        if self.runner is not None:
            from mlspec.engine.worker import run_request

            found = StepResult.from_json(self.runner.submit(run_request, request.to_json(), self.prefer).result())
        else:
            found = plugin.apply(request, self.runtime(step))
        return self._checked(plugin, step, found)

    def _destroy(self, plugin: Plugin, step: Step, inputs: Mapping[str, Outputs],
                 before: ResourceState | None) -> None:
        plugin.destroy(self.request(step, inputs, before), self.runtime(step))

    def _checked(self, plugin: Plugin, step: Step, found: Any) -> StepResult:
        """Outputs must be JSON values, and what the kind publishes must be what it promised."""
        if not isinstance(found, StepResult):
            raise PluginError(f"plugin {plugin.name}: apply of {step.address} returned {type(found).__name__}, "
                              "not a StepResult")
        outputs = _plain(found.outputs, f"plugin {plugin.name}: {step.address}'s outputs")
        found_caps = capabilities(plugin)
        if found.version is not None and not found_caps.registers_versions:
            raise PluginError(f"plugin {plugin.name} returned a version for {step.address} but does not declare "
                              "registers_versions")
        model = found_caps.publishes
        if model is not None and not found.held:
            from pydantic import ValidationError

            try:
                model.model_validate(outputs)
            except ValidationError as err:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()[:5])
                raise PluginError(f"plugin {plugin.name}: {step.address} did not publish a valid "
                                  f"{model.__name__}: {problems}") from None
        return StepResult(outputs, found.version, found.held)

    # -- what state keeps (the calling thread) -----------------------------------------------------

    def record(self, step: Step, result: StepResult | None, status: Status) -> Committed:
        before = self.previous.get(step.address)
        outputs: dict[str, Any] = dict(result.outputs) if result is not None else self.live.get(step.address, {})
        write = None
        if status is Status.APPLIED and result is not None:
            if result.version is not None:
                write, outputs = registry.registered(
                    self.versions.get(step.address), step.address, result.version.record, result.version.aliases,
                    outputs, step.fingerprint or "", result.held, self.commit)
                self.versions[step.address] = write.applied_to(self.versions.get(step.address))
            elif result.held:
                outputs[registry.HELD] = result.held
        elif status is not Status.APPLIED and before is not None and registry.PUBLISHED in before.outputs:
            # A failed or interrupted retrain leaves what dependents build on (the champion) as it was.
            outputs = {**outputs, **{k: before.outputs[k] for k in (registry.PUBLISHED, "champion", "aliases")
                                     if k in before.outputs}}
        entry = ResourceState(
            step.address, step.fingerprint or "", material(self.planned.desired[step.address]), outputs, status,
            created_at=before.created_at if before is not None else now(), updated_at=now(), commit=self.commit,
        )
        if self.mask:  # a plugin that put a secret in its outputs: state never holds it
            entry = dataclasses.replace(entry, outputs=self.mask.data(entry.outputs))
        if status is Status.APPLIED:
            self.live[step.address] = entry.outputs
        return Committed(entry, write)

    def describe(self, error: BaseException) -> str:
        return self.mask.text(reason(error))

    def unchanged(self, step: Step, entry: ResourceState) -> bool:
        before = self.previous.get(step.address)
        if before is None or before.status is not Status.APPLIED:
            return False
        old = self.published_digest(step.address, before.outputs)
        return old is not None and old == self.published_digest(step.address, entry.outputs)

    def cut_off(self, step: Step) -> ResourceState | None:
        before = self.previous.get(step.address)
        if before is None or before.status is not Status.APPLIED:
            return None
        fingerprint = step.cutoff_fingerprint or step.fingerprint or ""
        return ResourceState(step.address, fingerprint, material(self.planned.desired[step.address]),
                             dict(before.outputs), Status.APPLIED, before.created_at, now(), before.commit)


def apply_plan(
    planned: Planned,
    store: StateStore,
    *,
    parallelism: int = 4,
    cancel: threading.Event | None = None,
    abort: threading.Event | None = None,
    reporter: Reporter | None = None,
    commit: str | None = None,
    runner: Executor | None = None,
    run: str = "",
) -> ApplyResult:
    """`cancel`: start nothing new (first Ctrl-C); `abort`: stop steps in flight (second Ctrl-C).
    `runner`: run each step from its serialised request alone in this executor (a process pool; a
    cluster's), instead of calling the plugin in this process. `run`: the apply's id (its lock's), which
    every process a step starts carries, so the next apply can stop what a killed one left."""
    steps = _Steps(planned, store, commit=commit, abort=abort or threading.Event(), reporter=reporter,
                   runner=runner, run=run)
    result = _read_steps(planned.plan, store, steps.previous)
    done = execute(planned.plan, planned.upstream, steps.run, steps, store, parallelism=parallelism, cancel=cancel,
                   reporter=reporter, outputs=steps.live)
    done.done[:0] = result.done
    return done


def _read_steps(plan: Plan, store: StateStore, previous: Mapping[str, ResourceState]) -> ApplyResult:
    """--refresh-only: what refresh found becomes state; the live objects are not touched."""
    result = ApplyResult()
    for step in plan.steps:
        if step.action is not Action.READ:
            continue
        if step.observed is None:
            store.remove(step.address)
        else:
            old = previous[step.address]
            store.commit(ResourceState(old.address, old.fingerprint, old.spec,
                                       _plain(step.observed, f"the outputs refresh found of {step.address}"),
                                       old.status, old.created_at, now(), old.commit))
        result.done.append(step.address)
    return result


def _plain(outputs: Mapping[str, Any], what: str) -> dict[str, Any]:
    """Outputs must be JSON values (the contract): refuse anything else before it reaches state."""
    try:
        return dict(json.loads(json.dumps(dict(outputs), allow_nan=False)))
    except (TypeError, ValueError) as err:
        raise PluginError(f"{what} are not JSON values: {err}") from err

