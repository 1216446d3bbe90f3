"""The executor: parallel where the DAG allows, every step committed, failures contained."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from mlspec.engine.executor import Committed, Hooks, Outputs, execute
from mlspec.plan.model import Action, Plan, Step
from mlspec.sdk import StepResult
from mlspec.state.memory import MemoryStateStore
from mlspec.state.model import ResourceState, Status


def plan_of(*addresses: str, action: Action = Action.CREATE) -> Plan:
    return Plan("lineage", 0, tuple(Step(a, action, ("new resource",), (), f"fp-{a}") for a in addresses))


class Recorder(Hooks):
    """Rows as the step returned them; a step is "unchanged" when its outputs equal what state held."""

    def __init__(self, store: MemoryStateStore) -> None:
        self.before = {e.address: e for e in store.list()}

    def record(self, step: Step, result: StepResult | None, status: Status) -> Committed:
        outputs = dict(result.outputs) if result is not None else {}
        return Committed(ResourceState(step.address, step.fingerprint or "", {}, outputs, status))

    def unchanged(self, step: Step, entry: ResourceState) -> bool:
        before = self.before.get(step.address)
        return before is not None and before.outputs == entry.outputs

    def cut_off(self, step: Step) -> ResourceState | None:
        before = self.before[step.address]
        return ResourceState(step.address, step.fingerprint or "", {}, before.outputs, Status.APPLIED)


def record(store: MemoryStateStore) -> Recorder:
    return Recorder(store)


# A diamond: a -> (b, c) -> d, and an independent e.
DIAMOND = {"Task/b": ("Task/a",), "Task/c": ("Task/a",), "Task/d": ("Task/b", "Task/c")}


def test_outputs_flow_downstream_and_every_step_is_committed() -> None:
    store = MemoryStateStore()
    seen: dict[str, Mapping[str, Outputs]] = {}

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        seen[step.address] = upstream
        return StepResult({"value": step.address})

    with store.lock("apply"):
        result = execute(plan_of("Task/a", "Task/b", "Task/c", "Task/d"), DIAMOND, run, record(store), store)
    assert result.ok and sorted(result.done) == ["Task/a", "Task/b", "Task/c", "Task/d"]
    assert seen["Task/d"] == {"Task/b": {"value": "Task/b"}, "Task/c": {"value": "Task/c"}}
    assert all(e.status is Status.APPLIED for e in store.list())
    assert store.meta().serial == 8  # interrupted-then-applied: two commits per step


def test_a_failure_taints_its_step_skips_dependents_and_spares_other_branches() -> None:
    store = MemoryStateStore()

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        if step.address == "Task/b":
            raise RuntimeError("boom")
        return StepResult({})

    with store.lock("apply"):
        result = execute(plan_of("Task/a", "Task/b", "Task/c", "Task/d", "Task/e"), DIAMOND, run, record(store), store)
    assert result.failed == {"Task/b": "RuntimeError: boom"}
    assert result.skipped == {"Task/d": "upstream Task/b failed"}
    assert sorted(result.done) == ["Task/a", "Task/c", "Task/e"]
    assert store.get("Task/b").status is Status.TAINTED  # type: ignore[union-attr]
    assert store.get("Task/d") is None


def test_independent_steps_run_in_parallel() -> None:
    store = MemoryStateStore()
    addresses = [f"Task/t{i}" for i in range(16)]

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        time.sleep(0.2)
        return StepResult({})

    with store.lock("apply"):
        started = time.monotonic()
        result = execute(plan_of(*addresses), {}, run, record(store), store, parallelism=8)
        elapsed = time.monotonic() - started
    assert result.ok and len(result.done) == 16
    assert elapsed < 16 * 0.2 / 2  # two waves of 8, not sixteen steps one by one (a bound, not a benchmark)


def test_cancel_lets_running_steps_finish_and_starts_no_more() -> None:
    store = MemoryStateStore()
    cancel = threading.Event()

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        cancel.set()  # Ctrl-C arrives while the first step runs
        time.sleep(0.05)
        return StepResult({"finished": True})

    chain = {"Task/b": ("Task/a",), "Task/c": ("Task/b",)}
    with store.lock("apply"):
        result = execute(plan_of("Task/a", "Task/b", "Task/c"), chain, run, record(store), store, cancel=cancel)
    assert result.done == ["Task/a"] and store.get("Task/a").status is Status.APPLIED  # type: ignore[union-attr]
    assert set(result.skipped) == {"Task/b", "Task/c"} and store.get("Task/b") is None


def test_unchanged_upstreams_hand_down_their_recorded_outputs() -> None:
    store = MemoryStateStore()
    with store.lock("apply"):
        store.commit(ResourceState("Dataset/d", "fp", {}, {"uri": "artifact://d"}))
    got: dict[str, Mapping[str, Outputs]] = {}

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        got[step.address] = upstream
        return StepResult({})

    with store.lock("apply"):
        execute(plan_of("Model/m"), {"Model/m": ("Dataset/d",)}, run, record(store), store)
    assert got["Model/m"] == {"Dataset/d": {"uri": "artifact://d"}}


def test_a_step_that_comes_out_unchanged_cuts_off_the_dependents_planned_only_for_it() -> None:
    """Early cutoff: b and c were planned only because a recomputes; a published what it had, so
    neither runs, both keep their outputs and take their new fingerprints; d, conditional on b and c,
    is cut off in turn; e, with a change of its own, runs."""
    store = MemoryStateStore()
    with store.lock("apply"):
        for address in ("Task/a", "Task/b", "Task/c", "Task/d", "Task/e"):
            store.commit(ResourceState(address, "old", {}, {"value": address}))
    steps = (Step("Task/a", Action.REPLACE, ("spec changed: spec.cmd",), (), "fp-a"),
             Step("Task/b", Action.REPLACE, ("Task/a will be replaced",), (), "fp-b", conditional_on=("Task/a",)),
             Step("Task/c", Action.REPLACE, ("Task/a will be replaced",), (), "fp-c", conditional_on=("Task/a",)),
             Step("Task/d", Action.REPLACE, ("Task/b will be replaced",), (), "fp-d",
                  conditional_on=("Task/b", "Task/c")),
             Step("Task/e", Action.REPLACE, ("spec changed: spec.cmd", "Task/a will be replaced"), (), "fp-e"))
    ran: list[str] = []

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        ran.append(step.address)
        return StepResult({"value": step.address})

    graph = {**DIAMOND, "Task/e": ("Task/a",)}
    with store.lock("apply"):
        result = execute(Plan("lineage", 5, steps), graph, run, record(store), store)
    assert sorted(ran) == ["Task/a", "Task/e"]
    assert result.ok and result.cutoff == {a: "Task/a came out unchanged" for a in ("Task/b", "Task/c", "Task/d")}
    assert store.get("Task/d").fingerprint == "fp-d" and store.get("Task/d").outputs == {"value": "Task/d"}  # type: ignore[union-attr]


def test_a_step_whose_outputs_changed_runs_its_conditional_dependents() -> None:
    store = MemoryStateStore()
    with store.lock("apply"):
        store.commit(ResourceState("Task/a", "old", {}, {"value": "before"}))
        store.commit(ResourceState("Task/b", "old", {}, {"value": "b"}))
    steps = (Step("Task/a", Action.REPLACE, ("spec changed: spec.cmd",), (), "fp-a"),
             Step("Task/b", Action.REPLACE, ("Task/a will be replaced",), (), "fp-b", conditional_on=("Task/a",)))

    def run(step: Step, upstream: Mapping[str, Outputs]) -> StepResult:
        return StepResult({"value": "after" if step.address == "Task/a" else "b2"})

    with store.lock("apply"):
        result = execute(Plan("lineage", 2, steps), {"Task/b": ("Task/a",)}, run, record(store), store)
    assert result.cutoff == {} and result.done == ["Task/a", "Task/b"]
