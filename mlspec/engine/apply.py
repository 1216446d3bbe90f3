"""Carrying out a plan through the plugins: the effects of `mlspec apply`.

The executor (executor.py) decides when each step runs and commits it; this module decides what a
step does (which plugin call, in which order for a replace) and what state keeps of it. The caller
holds the state lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from mlspec import registry
from mlspec.engine.executor import ApplyResult, Outputs, execute
from mlspec.engine.planner import Planned, resource_of
from mlspec.errors import MlspecError
from mlspec.plan.builder import material
from mlspec.plan.model import Action, Plan, Step
from mlspec.plugin import StepContext, replace_order
from mlspec.policy import rules
from mlspec.state.base import StateStore
from mlspec.state.model import ResourceState, Status, now

Event = Callable[[str, Step, str], None]


class PolicyError(MlspecError):
    """A step would break a policy of mlspec.yaml that only apply can check."""


class StalePlanError(MlspecError):
    """A saved plan no longer matches the state or the specs it was made from."""


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


def apply_plan(
    planned: Planned,
    store: StateStore,
    *,
    parallelism: int = 4,
    cancel: threading.Event | None = None,
    abort: threading.Event | None = None,
    on_event: Event | None = None,
    log: Callable[[str], None] = print,
    commit: str | None = None,
    meter: Callable[[str], Callable[[int, int, str], None]] | None = None,
) -> ApplyResult:
    """`cancel`: start nothing new (first Ctrl-C); `abort`: stop steps in flight (second Ctrl-C)."""
    plan = planned.plan
    project = planned.specs.project
    abort = abort or threading.Event()
    previous = {entry.address: entry for entry in store.list()}
    artifacts = str(project.setting("artifacts", "url"))
    gated = bool(rules(project.setting("policies")).get("gated_serving"))

    versions = registry.read(store.note(registry.NOTE))  # read here: steps run in worker threads
    staged: dict[str, dict[str, Any]] = {}  # address -> notes its commit writes

    def context(step: Step, upstream: Mapping[str, Outputs], before: ResourceState | None) -> StepContext:
        plugin = planned.plugin_of(step.address)
        entry = versions.get(step.address)
        return StepContext(
            resource_of(planned, step.address, before), upstream, before, project.root, artifacts,
            planned.settings.get(plugin.name), fingerprint=step.fingerprint or "", log=log, cancelled=abort,
            registry=entry.to_json() if entry is not None else None,
            meter=meter(step.address) if meter is not None else None,
        )

    def run_step(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        # A Model hands on its champion, not its latest run (mlspec/registry.py).
        return _plain(act(step, {address: registry.view(out) for address, out in upstream.items()}))

    def act(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        if gated and step.address.startswith("Service/") and step.action is not Action.DELETE:
            failed = [a for a, out in upstream.items() if a.startswith("Model/") and not registry.servable(out)]
            if failed:  # the plan could not know: the Model was retrained in this very apply
                raise PolicyError(f"policy gated_serving: {step.address} would serve {failed[0]}, whose evaluation "
                                  "gates did not pass; it keeps serving what it served")
        before = previous.get(step.address)
        plugin = planned.plugin_of(step.address)
        if step.action is Action.DELETE:
            plugin.destroy(context(step, upstream, before))
            return {}
        if step.action is Action.UPDATE and before is not None and before.fingerprint == step.fingerprint:
            # Metadata only: state changes, the live object does not, and nothing new reaches dependents.
            return {k: v for k, v in before.outputs.items() if k != registry.HELD}
        order = replace_order(plugin) if step.action is Action.REPLACE and before is not None else "in_place"
        if order == "destroy_before_create":
            plugin.destroy(context(step, upstream, before))
            return dict(plugin.apply(context(step, upstream, None)))
        if order == "create_before_destroy":
            outputs = dict(plugin.apply(context(step, upstream, None)))
            plugin.destroy(context(step, upstream, before))
            return outputs
        return dict(plugin.apply(context(step, upstream, before)))

    def record(step: Step, outputs: Outputs, status: Status) -> ResourceState:
        before = previous.get(step.address)
        want = planned.desired[step.address]
        if status is Status.APPLIED and registry.REGISTER in outputs:
            # Written in the step's own commit (`staged`, below): the version and the row, or neither.
            entries = registry.read(store.note(registry.NOTE))
            outputs = registry.registered(entries, step.address, outputs, step.fingerprint or "", commit)
            staged[step.address] = {registry.NOTE: registry.write(entries)}
        elif status is not Status.APPLIED and before is not None and registry.PUBLISHED in before.outputs:
            # A failed or interrupted retrain leaves what dependents build on (the champion) as it was.
            outputs = {**outputs, **{k: before.outputs[k] for k in (registry.PUBLISHED, "champion", "aliases")
                                     if k in before.outputs}}
        return ResourceState(
            step.address, step.fingerprint or "", material(want), dict(outputs), status,
            created_at=before.created_at if before is not None else now(), updated_at=now(), commit=commit,
        )

    result = _read_steps(plan, store, previous)
    done = execute(plan, planned.upstream, run_step, record, store, parallelism=parallelism, cancel=cancel,
                   on_event=on_event, notes=lambda address: staged.pop(address, {}))
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
            store.commit(ResourceState(old.address, old.fingerprint, old.spec, _plain(step.observed), old.status,
                                       old.created_at, now(), old.commit))
        result.done.append(step.address)
    return result


def _plain(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Outputs must be JSON values (the contract): refuse anything else before it reaches state."""
    import json

    try:
        return dict(json.loads(json.dumps(outputs, allow_nan=False)))
    except (TypeError, ValueError) as err:
        raise MlspecError(f"a plugin returned outputs that are not JSON values: {err}") from err
