"""The model registry's rules (pure), and what the planner hands downstream of a Model: its champion."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlspec import registry
from mlspec.plan.builder import build_plan
from mlspec.plan.model import Action
from mlspec.registry import Entry, RegistryError
from mlspec.state.model import ResourceState
from tests.plan.test_builder import META, actions, applied, pipeline


def test_the_same_run_redone_is_the_same_version_and_other_gates_make_a_new_one() -> None:
    entry = Entry()
    assert entry.add({"digest": "w1", "fingerprint": "f1"}) == 1
    assert entry.add({"digest": "w1", "fingerprint": "f1"}) == 1  # an apply redone after a crash
    assert entry.add({"digest": "w1", "fingerprint": "f2"}) == 2  # same weights, judged again
    assert [v["version"] for v in entry.versions] == [1, 2]


def test_rollback_restores_the_champion_before_the_current_one() -> None:
    entry = Entry()
    for n in (1, 2, 3):
        entry.add({"digest": f"w{n}", "fingerprint": f"f{n}"})
    with pytest.raises(RegistryError, match="nothing was ever promoted"):
        entry.previous_champion()
    entry.point("champion", 1, "apply")
    entry.point("champion", 3, "apply")
    entry.point("candidate", 2, "apply")
    assert entry.previous_champion() == 1 and entry.published() == "f3"
    entry.point("champion", 1, "rollback")
    assert entry.published() == "f1" and entry.champion_summary() == {"version": 1, "digest": "w1", "fingerprint": "f1"}
    with pytest.raises(RegistryError, match="no earlier champion"):
        entry.previous_champion()  # rolled back to the first: not forth again to 3


def test_rolling_back_twice_goes_two_champions_back() -> None:
    entry = Entry()
    for n in (1, 2, 3):
        entry.add({"digest": f"w{n}", "fingerprint": f"f{n}"})
        entry.point("champion", n, "apply")
    entry.point("champion", entry.previous_champion(), "rollback")
    assert entry.aliases["champion"] == 2 and entry.previous_champion() == 1
    entry.point("champion", entry.previous_champion(), "rollback")
    assert entry.aliases["champion"] == 1
    entry.point("champion", 3, "promote")
    assert entry.previous_champion() == 1
    with pytest.raises(RegistryError, match="no version 9"):
        entry.point("champion", 9, "promote")


@given(st.lists(st.tuples(st.sampled_from(["champion", "candidate", "staging"]), st.integers(1, 4)), max_size=30))
def test_aliases_always_name_a_version_and_the_history_replays_to_them(moves: list[tuple[str, int]]) -> None:
    entry = Entry()
    for n in range(1, 5):
        entry.add({"digest": f"w{n}", "fingerprint": f"f{n}"})
    for alias, number in moves:
        entry.point(alias, number, "promote")
    replayed: dict[str, int] = {}
    for move in entry.history:
        assert replayed.get(move["alias"]) == move["from"] and move["from"] != move["to"]
        replayed[move["alias"]] = move["to"]
    assert replayed == entry.aliases and all(entry.version(v) for v in entry.aliases.values())
    assert Entry.from_json(entry.to_json()) == entry


def test_registered_outputs_carry_the_version_the_champion_and_what_is_published() -> None:
    write, out = registry.registered(None, "Model/m", {"digest": "w1", "metrics": {"f1": 0.9}}, ("champion",),
                                     {"digest": "w1"}, "f1", None, "abc123")
    assert out["version"] == 1 and out["published"] == "f1" and "held" not in out
    assert out["champion"]["metrics"] == {"f1": 0.9} and write.versions[0]["commit"] == "abc123"
    assert [m["alias"] for m in write.moves] == ["champion"]
    entry = write.applied_to(None)
    write2, held = registry.registered(entry, "Model/m", {"digest": "w2"}, ("candidate",), {"digest": "w2"}, "f2",
                                       "gate failed")
    assert held["version"] == 2 and held["published"] == "f1" and held["aliases"] == {"champion": 1, "candidate": 2}
    assert held["held"] == "gate failed" and len(write2.versions) == 1  # only what is new is written
    assert registry.servable(held) and not registry.servable({"champion": None})


def test_a_registry_write_appends_and_replays_to_the_same_entry() -> None:
    """What a store appends (versions, moves) reads back as the entry the registry computed."""
    write, _ = registry.registered(None, "Model/m", {"digest": "w1"}, ("champion",), {}, "f1", None)
    entry = write.applied_to(None)
    entry.add({"digest": "w2", "fingerprint": "f2"})
    entry.point("champion", 2, "promote")
    second = entry.since("Model/m", 1, 1)
    assert [v["version"] for v in second.versions] == [2] and len(second.moves) == 1
    replayed = Entry.from_rows([*write.versions, *second.versions], [*write.moves, *second.moves])
    assert replayed == second.applied_to(write.applied_to(None)) and replayed.aliases == {"champion": 2}


def test_downstream_of_a_model_builds_on_its_champion_not_its_latest_run() -> None:
    desired = pipeline()
    first = build_plan(desired, {}, META)
    state = applied(first, desired)
    model = state["Model/m"]
    state["Model/m"] = replace(model, outputs={"published": model.fingerprint, "champion": {"version": 1}})
    assert not build_plan(desired, state, META).has_changes

    retrained = pipeline(**{"Model/m": {"spec": {"dataset": "reviews", "hyperparameters": {"lr": 0.01}}}})
    plan = build_plan(retrained, state, META)
    assert actions(plan)["Service/api"] == "replace"  # known after apply: the run may pass its gates
    # ... it did not: the Model is recorded with the new fingerprint, still publishing the old champion.
    held = {**state, "Model/m": ResourceState("Model/m", plan.steps[1].fingerprint or "",
                                              applied(plan, retrained)["Model/m"].spec,
                                              {"published": model.fingerprint, "champion": {"version": 1}})}
    assert not build_plan(retrained, held, META).has_changes  # the Service keeps what it had

    promoted = {**held, "Model/m": replace(held["Model/m"], outputs={
        "published": held["Model/m"].fingerprint, "champion": {"version": 2}})}
    moved = build_plan(retrained, promoted, META)
    step = next(s for s in moved.steps if s.address == "Service/api")
    assert step.action is Action.REPLACE
    assert step.causes == ("Model/m's champion is now version 2 (promoted or rolled back)",)
