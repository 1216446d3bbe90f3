"""Plans say exactly what would change and why, down to the root cause."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from mlspec.plan.builder import Desired, PlanError, build_plan, material
from mlspec.plan.model import SENSITIVE, Action, Plan
from mlspec.state.model import ResourceState, StateMeta, Status

META = StateMeta("lineage-1", 7)


def pipeline(**over: Any) -> list[Desired]:
    """Dataset -> Model -> Service, in dependency order."""
    data = Desired("Dataset/reviews", "Dataset", {"name": "reviews", "owner": "nlp"},
                   {"source": {"path": "d.csv", "format": "csv"}, "salt": "${env:SALT}"},
                   plugin="data", plugin_version="1", inputs={"d.csv": "aa" * 32})
    model = Desired("Model/m", "Model", {"name": "m"}, {"dataset": "reviews", "hyperparameters": {"lr": 0.001}},
                    upstream=("Dataset/reviews",), plugin="torch", plugin_version="1")
    service = Desired("Service/api", "Service", {"name": "api"}, {"model": "m", "port": 3000},
                      upstream=("Model/m",), plugin="bentoml", plugin_version="1")
    out = [data, model, service]
    return [replace(d, **over[d.address]) if d.address in over else d for d in out]


def applied(plan: Plan, desired: list[Desired], status: Status = Status.APPLIED) -> dict[str, ResourceState]:
    """The state an apply of `plan` would leave: what the engine commits per step."""
    by_address = {d.address: d for d in desired}
    return {
        s.address: ResourceState(s.address, s.fingerprint or "", material(by_address[s.address]), {}, status)
        for s in plan.steps if s.action is not Action.DELETE
    }


def actions(plan: Plan) -> dict[str, str]:
    return {s.address: s.action.value for s in plan.steps}


def test_an_empty_state_creates_everything() -> None:
    plan = build_plan(pipeline(), {}, META)
    assert actions(plan) == {"Dataset/reviews": "create", "Model/m": "create", "Service/api": "create"}
    assert (plan.lineage, plan.serial) == ("lineage-1", 7) and plan.has_changes


def test_planning_again_after_apply_changes_nothing() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    plan = build_plan(pipeline(), state, META)
    assert set(actions(plan).values()) == {"noop"} and not plan.has_changes


def test_a_changed_hyperparameter_replaces_the_model_and_what_serves_it() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    changed = pipeline(**{"Model/m": {"spec": {"dataset": "reviews", "hyperparameters": {"lr": 0.002}}}})
    plan = build_plan(changed, state, META)
    assert actions(plan) == {"Dataset/reviews": "noop", "Model/m": "replace", "Service/api": "replace"}
    service = plan.steps[2]
    assert service.explain() == (
        "replace Service/api  because Model/m will be replaced  because spec changed: spec.hyperparameters.lr"
    )
    model = plan.steps[1]
    assert [(c.path, c.before, c.after) for c in model.changes] == [("spec.hyperparameters.lr", 0.001, 0.002)]


def test_changed_data_is_named_with_its_digests_through_the_chain() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    plan = build_plan(pipeline(**{"Dataset/reviews": {"inputs": {"d.csv": "bb" * 32}}}), state, META)
    assert actions(plan)["Service/api"] == "replace"
    assert plan.steps[2].causes == (
        "Model/m will be replaced",
        "Dataset/reviews will be replaced",
        "inputs changed: d.csv changed (aaaaaaaa… -> bbbbbbbb…)",
    )


def test_owner_labels_and_description_update_state_only() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    relabelled = pipeline(**{"Dataset/reviews": {"metadata": {"name": "reviews", "owner": "platform"}}})
    plan = build_plan(relabelled, state, META)
    assert actions(plan) == {"Dataset/reviews": "update", "Model/m": "noop", "Service/api": "noop"}
    assert plan.steps[0].causes == ("metadata changed: metadata.owner",)


def test_a_new_plugin_version_recomputes() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    plan = build_plan(pipeline(**{"Model/m": {"plugin_version": "2"}}), state, META)
    assert plan.steps[1].causes == ("plugin torch 1 -> 2",)


@pytest.mark.parametrize(
    ("status", "cause"),
    [(Status.TAINTED, "tainted: its last apply failed"),
     (Status.INTERRUPTED, "interrupted: the last apply stopped during this step")],
)
def test_failed_and_interrupted_steps_are_redone(status: Status, cause: str) -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    state["Model/m"] = replace(state["Model/m"], status=status)
    plan = build_plan(pipeline(), state, META)
    assert plan.steps[1].action is Action.REPLACE and plan.steps[1].causes == (cause,)
    assert actions(plan)["Dataset/reviews"] == "noop"


def test_drift_and_requested_replacement() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    plan = build_plan(pipeline(), state, META, drift={"Service/api": "server down"}, replace=["Dataset/reviews"])
    assert plan.steps[0].causes == ("replacement requested (--replace)",)
    assert plan.steps[2].causes == ("drift: server down",)


def test_orphans_are_kept_unless_prune_is_on() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    without_service = pipeline()[:2]
    kept = build_plan(without_service, state, META)
    assert kept.orphans == ("Service/api",) and not kept.has_changes
    pruned = build_plan(without_service, state, META, prune=True)
    assert actions(pruned)["Service/api"] == "delete"


def test_prevent_destroy_fails_a_plan_that_would_delete_or_replace() -> None:
    guarded = {"Model/m": {"spec": {"dataset": "reviews", "hyperparameters": {"lr": 0.001},
                                    "lifecycle": {"prevent_destroy": True}}}}
    state = applied(build_plan(pipeline(**guarded), {}, META), pipeline(**guarded))
    changed = {"Model/m": {"spec": {"dataset": "reviews", "hyperparameters": {"lr": 0.5},
                                    "lifecycle": {"prevent_destroy": True}}}}
    with pytest.raises(PlanError, match="prevent_destroy forbids this plan: replace Model/m"):
        build_plan(pipeline(**changed), state, META)
    with pytest.raises(PlanError, match="delete Model/m"):
        build_plan(pipeline()[:1], state, META, prune=True)


def test_sensitive_values_never_show_in_a_plan() -> None:
    plan = build_plan(pipeline(), {}, META)
    salt = next(c for c in plan.steps[0].changes if c.path == "spec.salt")
    assert salt.after == SENSITIVE and "${env:" not in str(plan.to_json())


def test_a_plan_round_trips_json() -> None:
    state = applied(build_plan(pipeline(), {}, META), pipeline())
    plan = build_plan(pipeline(**{"Model/m": {"plugin_version": "2"}}), state, META)
    assert Plan.from_json(plan.to_json()) == plan
