"""Building a plan: a pure function of the desired resources and the state. No I/O.

For every resource, in dependency order, compare its fingerprint with the one state recorded and
say what apply must do, and why, as a chain a reviewer can follow to its root:

    replace Service/sentiment-api  because Model/sentiment will be replaced
      because spec changed: spec.hyperparameters.learning_rate

State records, per address, the material the fingerprint was made of (kind, metadata, spec, inputs,
plugin): that is what lets a plan name the field, input file, plugin version or upstream that moved.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlspec.digests import is_digest
from mlspec.errors import PlanError
from mlspec.plan.fingerprint import DESCRIPTIVE_SPEC_FIELDS, METADATA_FIELDS, Fingerprint, canonical, fingerprint
from mlspec.plan.model import SENSITIVE, Action, Change, Plan, Step
from mlspec.state.model import ResourceState, StateMeta, Status

MAX_LISTED = 5  # fields named in one cause; the rest are counted


InPlace = Callable[["Desired", Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Desired:
    """One resource as the specs want it, with the plugin's observations already made."""

    address: str
    kind: str
    metadata: Mapping[str, Any]
    spec: Mapping[str, Any]
    upstream: tuple[str, ...] = ()
    plugin: str = ""
    plugin_version: str = ""
    inputs: Mapping[str, str] = field(default_factory=dict)  # e.g. {file path: sha256}

    @property
    def prevent_destroy(self) -> bool:
        return bool((self.spec.get("lifecycle") or {}).get("prevent_destroy"))


def material(desired: Desired) -> dict[str, Any]:
    """What state keeps of a resource so a later plan can explain a change."""
    return {
        "kind": desired.kind,
        "metadata": dict(desired.metadata),
        "spec": dict(desired.spec),
        "inputs": dict(desired.inputs),
        "plugin": [desired.plugin, desired.plugin_version],
    }


def build_plan(
    desired: Sequence[Desired],
    state: Mapping[str, ResourceState],
    meta: StateMeta,
    *,
    prune: bool = False,
    replace: Iterable[str] = (),
    drift: Mapping[str, str] | None = None,
    in_place: InPlace | None = None,
    requested: Mapping[str, str] | None = None,
) -> Plan:
    """`desired` in dependency order (upstream first); `drift`: address -> what refresh found;
    `requested`: address -> why another resource asked for its replacement (a Monitor's retrain).

    `in_place(desired, before_spec)`: the plugin's diff, True when every changed spec field can be
    updated in place; without it, any change to what a resource computes means a replace.
    """
    forced = set(replace)
    drifted = drift or {}
    asked = requested or {}
    seen: dict[str, Fingerprint] = {}  # address -> the fingerprint its dependents build on
    published: dict[str, str] = {}  # address -> what it publishes, for a resource with a champion
    steps: dict[str, Step] = {}
    for want in desired:
        upstream = {u: seen[u] for u in want.upstream if u in seen}
        fp = _fingerprint(want, upstream)
        step = _step(want, fp, state.get(want.address), steps, forced, drifted, in_place, published, asked)
        if step.conditional_on and not _explained_by(want, upstream, step.conditional_on, state):
            step = dataclasses.replace(step, conditional_on=())
        if step.conditional_on:
            step = dataclasses.replace(step, cutoff_fingerprint=_cutoff_fingerprint(want, upstream, step, steps, state))
        steps[want.address] = step
        seen[want.address] = _seen_downstream(fp, step, state.get(want.address), published)
    deletes: list[Step] = []
    orphans: list[str] = []
    wanted = {w.address for w in desired}
    for address in sorted(set(state) - wanted):
        if prune:
            deletes.append(Step(address, Action.DELETE, ("no longer in the specs, and prune is on",)))
        else:
            orphans.append(address)
    _check_prevent_destroy(desired, state, [*steps.values(), *deletes])
    return Plan(meta.lineage, meta.serial, (*steps.values(), *reversed(deletes)), tuple(orphans))


def _fingerprint(want: Desired, upstream: Mapping[str, Fingerprint]) -> Fingerprint:
    return fingerprint(want.kind, want.metadata, want.spec, plugin=want.plugin, plugin_version=want.plugin_version,
                       inputs=want.inputs, upstream=upstream)


def _explained_by(want: Desired, upstream: Mapping[str, Fingerprint], conditional: Iterable[str],
                  state: Mapping[str, ResourceState]) -> bool:
    """Would the fingerprint be the one state holds if these upstreams handed on what they handed on
    before? Then they alone moved it, and if they come out the same the step may be cut off; if
    something else moved too (an upstream's champion promoted meanwhile), it must run."""
    previous = state.get(want.address)
    before: dict[str, Fingerprint] = dict(upstream)
    for address in conditional:
        recorded = state.get(address)
        if recorded is None:
            return False
        value = recorded.outputs.get("published")
        before[address] = Fingerprint(value if isinstance(value, str) and value else recorded.fingerprint)
    return previous is not None and _fingerprint(want, before).data == previous.fingerprint


def _cutoff_fingerprint(want: Desired, upstream: Mapping[str, Fingerprint], step: Step, steps: Mapping[str, Step],
                        state: Mapping[str, ResourceState]) -> str:
    """The fingerprint to commit if `step` is cut off: what the next plan will compute. An upstream that
    publishes a champion and is cut off keeps publishing its old champion's fingerprint (its cut-off
    run registered nothing); one that is itself cut off with another fingerprint hands on that one."""
    cut = dict(upstream)
    for address in step.conditional_on:
        recorded = state.get(address)
        value = recorded.outputs.get("published") if recorded is not None else None
        if isinstance(value, str) and value:
            cut[address] = Fingerprint(value)
        elif address in steps and steps[address].cutoff_fingerprint:
            cut[address] = Fingerprint(str(steps[address].cutoff_fingerprint))
    return _fingerprint(want, cut).data


def _seen_downstream(fp: Fingerprint, step: Step, previous: ResourceState | None,
                     published: dict[str, str]) -> Fingerprint:
    """What dependents build on. Usually the resource's own fingerprint; for one that publishes a
    champion (mlspec/registry.py) and is not recomputed, the champion's: a candidate that failed its
    gates moves nothing downstream, a promote or rollback moves it."""
    if previous is None or recomputes(step):
        return fp
    value = previous.outputs.get("published")
    if not isinstance(value, str):
        return fp
    champion = previous.outputs.get("champion") or {}
    if champion.get("version"):  # without one, the planner leaves its dependents waiting, unplanned
        published[step.address] = f"{step.address}'s champion is now version {champion['version']} " \
                                  "(promoted or rolled back)"
    return fp if value == fp.data else Fingerprint(value)


def _step(
    want: Desired,
    fp: Fingerprint,
    previous: ResourceState | None,
    steps: Mapping[str, Step],
    forced: set[str],
    drifted: Mapping[str, str],
    in_place: InPlace | None,
    published: Mapping[str, str],
    asked: Mapping[str, str],
) -> Step:
    now = material(want)
    if previous is None:
        shown = tuple(c for c in field_changes({}, now) if c.after not in ({}, []))  # defaults left empty: noise
        return Step(want.address, Action.CREATE, ("new resource",), shown, fp.data)
    before: dict[str, Any] = previous.spec
    unchanged = fp.data == previous.fingerprint and previous.status is Status.APPLIED and before == now
    if unchanged and want.address not in forced and want.address not in drifted and want.address not in asked:
        return Step(want.address, Action.NOOP, (), (), fp.data)  # the common case, without a field diff
    changes = field_changes(before, now)
    if want.address in forced:
        return Step(want.address, Action.REPLACE, ("replacement requested (--replace)",), changes, fp.data)
    if want.address in asked:
        return Step(want.address, Action.REPLACE, (asked[want.address],), changes, fp.data)
    if previous.status is Status.TAINTED:
        return Step(want.address, Action.REPLACE, ("tainted: its last apply failed",), changes, fp.data)
    if previous.status is Status.INTERRUPTED:
        return Step(want.address, Action.REPLACE, ("interrupted: the last apply stopped during this step",),
                    changes, fp.data)
    if want.address in drifted:
        return Step(want.address, Action.REPLACE, (f"drift: {drifted[want.address]}",), changes, fp.data)
    if fp.data != previous.fingerprint:
        causes, conditional = _why_recompute(want, before, now, steps, published)
        only_spec = len(causes) == 1 and causes[0].startswith("spec changed")
        if only_spec and in_place is not None and in_place(want, before.get("spec") or {}):
            return Step(want.address, Action.UPDATE, (f"{causes[0]} (in place)",), changes, fp.data)
        return Step(want.address, Action.REPLACE, causes, changes, fp.data, conditional_on=conditional)
    descriptive = [c.path for c in changes if _is_descriptive(c.path)]
    if descriptive:
        return Step(want.address, Action.UPDATE, (f"metadata changed: {_listed(descriptive)}",), changes, fp.data)
    return Step(want.address, Action.NOOP, (), (), fp.data)


def _why_recompute(
    want: Desired, before: Mapping[str, Any], now: Mapping[str, Any], steps: Mapping[str, Step],
    published: Mapping[str, str],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The causes, outermost first, and the upstreams the step is conditional on: when nothing of its
    own moved and it is planned only because they recompute, it is cut off at apply time if each of
    them comes out publishing what it published before (early cutoff)."""
    causes: list[str] = []
    own = [c.path for c in field_changes(before, now) if c.path.startswith("spec.") and not _is_descriptive(c.path)]
    if own:
        causes.append(f"spec changed: {_listed(own)}")
    old_inputs, new_inputs = before.get("inputs", {}), now["inputs"]
    moved = [
        _input_change(name, old_inputs.get(name), new_inputs.get(name))
        for name in sorted(set(old_inputs) | set(new_inputs))
        if old_inputs.get(name) != new_inputs.get(name)
    ]
    if moved:
        causes.append(f"inputs changed: {_listed(moved)}")
    if before.get("plugin") != now["plugin"]:
        old = before.get("plugin") or ["?", "?"]
        causes.append(f"plugin {now['plugin'][0]} {old[1]} -> {now['plugin'][1]}")
    upstream = [u for u in want.upstream if u in steps and recomputes(steps[u])]
    conditional: tuple[str, ...] = ()
    if upstream:
        first = steps[upstream[0]]
        others = f" (and {len(upstream) - 1} more upstream)" if len(upstream) > 1 else ""
        if not causes:  # the chain to the root: why the upstream moves
            causes = [f"{first.address} will be {first.action.past}{others}", *first.causes]
            conditional = tuple(upstream)
        else:
            causes.append(f"{first.address} will be {first.action.past}{others}")
    if not causes:  # nothing of its own moved: what an upstream publishes did
        causes = [published[u] for u in want.upstream if u in published]
    return tuple(causes) or ("fingerprint changed",), conditional


def recomputes(step: Step) -> bool:
    """Does this step change what its dependents receive? (A metadata-only update does not.)"""
    if step.action in (Action.CREATE, Action.REPLACE):
        return True
    return step.action is Action.UPDATE and not step.causes[0].startswith("metadata changed")


def _input_change(name: str, old: str | None, new: str | None) -> str:
    if old is not None and new is not None and old.lstrip("-").isdigit() and new.lstrip("-").isdigit():
        delta = int(new) - int(old)  # a count (a dataset's rows): say by how much, not two digests
        return f"{name} {int(old):,} -> {int(new):,} ({delta:+,})"
    if old is None:
        return f"{name} added"
    if new is None:
        return f"{name} removed"
    if not (is_digest(old) or is_digest(new)) and max(len(old), len(new)) <= 48:
        return f"{name} changed ({old} -> {new})"  # a version, a GPU: readable as it is
    return f"{name} changed ({old[:8]}… -> {new[:8]}…)"


def field_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[Change, ...]:
    """Leaf-level differences of `metadata` and `spec`, secrets masked: what a reviewer reads."""
    old = _flatten({k: before[k] for k in ("metadata", "spec") if k in before})
    new = _flatten({k: after[k] for k in ("metadata", "spec") if k in after})
    absent = object()  # a field that is not there differs from one that is null
    return tuple(
        Change(path, _shown(old.get(path)), _shown(new.get(path)))
        for path in sorted(set(old) | set(new))
        if not _same(old.get(path, absent), new.get(path, absent)) and not _filled(path, old, new)
    )


def _filled(path: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """`labels: {}` -> `labels: {tier: gold}` is the key added below it, not `labels` removed."""
    for this, other in ((old, new), (new, old)):
        if this.get(path) == {} and path not in other:
            below = path + "."
            if any(key.startswith(below) for key in other):
                return True
    return False


def _same(a: Any, b: Any) -> bool:
    """Equal as the fingerprint sees them: JSON's 1 and 1.0 and true are three different values."""
    if a is b:
        return True
    if type(a) is not type(b) or a != b:
        return False
    return not isinstance(a, list) or canonical(a) == canonical(b)  # [1] == [1.0] == [True] in Python


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and (value or not prefix):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and prefix and all(isinstance(item, Mapping) for item in value):
        # a list of records (a Prompt's tests, a Monitor's alerts): one line per field that changed in one
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{i}]") or {f"{prefix}[{i}]": item})
        return out
    return {prefix: value} if prefix else {}


def _shown(value: Any) -> Any:
    """Values that name an environment variable are sensitive: a plan never shows them."""
    if isinstance(value, str) and "${env:" in value:
        return SENSITIVE
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _is_descriptive(path: str) -> bool:
    parts = path.split(".")
    if parts[0] == "metadata":
        return len(parts) > 1 and parts[1] in METADATA_FIELDS
    return len(parts) > 1 and parts[1] in DESCRIPTIVE_SPEC_FIELDS


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def _check_prevent_destroy(
    desired: Sequence[Desired], state: Mapping[str, ResourceState], steps: Sequence[Step]
) -> None:
    protected = {w.address for w in desired if w.prevent_destroy}
    protected |= {
        a for a, s in state.items() if ((s.spec.get("spec") or {}).get("lifecycle") or {}).get("prevent_destroy")
    }
    broken = [s for s in steps if s.address in protected and s.action in (Action.DELETE, Action.REPLACE)]
    if broken:
        listed = "; ".join(s.explain() for s in broken)
        raise PlanError(f"lifecycle.prevent_destroy forbids this plan: {listed}")
