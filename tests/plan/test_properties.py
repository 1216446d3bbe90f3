"""Properties of plans over arbitrary specs: a plan of what was just applied is empty, and any edit
to what a resource computes is named, at its path, and reaches every dependent."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mlspec.plan.builder import Desired, build_plan, material
from mlspec.plan.model import Action
from mlspec.state.model import ResourceState, StateMeta

META = StateMeta("lineage", 1)
keys = st.text("abcdefghij_", min_size=1, max_size=6)
leaves = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False), st.text(max_size=5))
values = st.recursive(leaves, lambda inner: st.dictionaries(keys, inner, max_size=4) | st.lists(inner, max_size=3),
                      max_leaves=12)
specs = st.dictionaries(keys.filter(lambda k: k not in ("description", "lifecycle", "depends_on")), values,
                        min_size=1, max_size=5)


def chain(first: dict[str, Any], second: dict[str, Any]) -> list[Desired]:
    return [
        Desired("Task/a", "Task", {"name": "a"}, first, plugin="task", plugin_version="1"),
        Desired("Task/b", "Task", {"name": "b"}, second, upstream=("Task/a",), plugin="task", plugin_version="1"),
    ]


def applied(desired: list[Desired]) -> dict[str, ResourceState]:
    plan = build_plan(desired, {}, META)
    by_address = {d.address: d for d in desired}
    return {s.address: ResourceState(s.address, s.fingerprint or "", material(by_address[s.address]))
            for s in plan.steps}


@settings(max_examples=150, deadline=None)
@given(specs, specs)
def test_a_plan_of_what_was_just_applied_changes_nothing(first: dict[str, Any], second: dict[str, Any]) -> None:
    desired = chain(first, second)
    plan = build_plan(desired, applied(desired), META)
    assert not plan.has_changes


@settings(max_examples=150, deadline=None)
@given(specs, specs, values)
def test_an_edit_is_named_and_reaches_every_dependent(first: dict[str, Any], second: dict[str, Any],
                                                      new: Any) -> None:
    key = sorted(first)[0]
    edited = {**first, key: new}
    state = applied(chain(first, second))
    plan = build_plan(chain(edited, second), state, META)
    if new == first[key] and type(new) is type(first[key]):
        assert not plan.has_changes
        return
    a, b = plan.steps
    assert a.action is Action.REPLACE and a.causes[0].startswith("spec changed: spec.")
    assert any(c.path == f"spec.{key}" or c.path.startswith((f"spec.{key}.", f"spec.{key}[")) for c in a.changes) \
        or new in ({}, [])
    assert b.action is Action.REPLACE and b.causes[0] == "Task/a will be replaced"
