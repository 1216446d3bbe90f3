"""The executor: parallel where the DAG allows, every step committed, failures contained."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

from mlspec.engine.executor import Outputs, execute
from mlspec.plan.model import Action, Plan, Step
from mlspec.state.memory import MemoryStateStore
from mlspec.state.model import ResourceState, Status


def plan_of(*addresses: str, action: Action = Action.CREATE) -> Plan:
    return Plan("lineage", 0, tuple(Step(a, action, ("new resource",), (), f"fp-{a}") for a in addresses))


def record(step: Step, outputs: Outputs, status: Status) -> ResourceState:
    return ResourceState(step.address, step.fingerprint or "", {}, outputs, status)


# A diamond: a -> (b, c) -> d, and an independent e.
DIAMOND = {"Task/b": ("Task/a",), "Task/c": ("Task/a",), "Task/d": ("Task/b", "Task/c")}


def test_outputs_flow_downstream_and_every_step_is_committed() -> None:
    store = MemoryStateStore()
    seen: dict[str, Mapping[str, Outputs]] = {}

    def run(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        seen[step.address] = upstream
        return {"value": step.address}

    with store.lock("apply"):
        result = execute(plan_of("Task/a", "Task/b", "Task/c", "Task/d"), DIAMOND, run, record, store)
    assert result.ok and sorted(result.done) == ["Task/a", "Task/b", "Task/c", "Task/d"]
    assert seen["Task/d"] == {"Task/b": {"value": "Task/b"}, "Task/c": {"value": "Task/c"}}
    assert all(e.status is Status.APPLIED for e in store.list())
    assert store.meta().serial == 8  # interrupted-then-applied: two commits per step


def test_a_failure_taints_its_step_skips_dependents_and_spares_other_branches() -> None:
    store = MemoryStateStore()

    def run(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        if step.address == "Task/b":
            raise RuntimeError("boom")
        return {}

    with store.lock("apply"):
        result = execute(plan_of("Task/a", "Task/b", "Task/c", "Task/d", "Task/e"), DIAMOND, run, record, store)
    assert result.failed == {"Task/b": "RuntimeError: boom"}
    assert result.skipped == {"Task/d": "upstream Task/b failed"}
    assert sorted(result.done) == ["Task/a", "Task/c", "Task/e"]
    assert store.get("Task/b").status is Status.TAINTED  # type: ignore[union-attr]
    assert store.get("Task/d") is None


def test_independent_steps_run_in_parallel() -> None:
    store = MemoryStateStore()
    addresses = [f"Task/t{i}" for i in range(16)]

    def run(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        time.sleep(0.2)
        return {}

    with store.lock("apply"):
        started = time.monotonic()
        result = execute(plan_of(*addresses), {}, run, record, store, parallelism=8)
        elapsed = time.monotonic() - started
    assert result.ok and len(result.done) == 16
    assert elapsed < 16 * 0.2 / 2  # two waves of 8, not sixteen steps one by one (a bound, not a benchmark)


def test_cancel_lets_running_steps_finish_and_starts_no_more() -> None:
    store = MemoryStateStore()
    cancel = threading.Event()

    def run(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        cancel.set()  # Ctrl-C arrives while the first step runs
        time.sleep(0.05)
        return {"finished": True}

    chain = {"Task/b": ("Task/a",), "Task/c": ("Task/b",)}
    with store.lock("apply"):
        result = execute(plan_of("Task/a", "Task/b", "Task/c"), chain, run, record, store, cancel=cancel)
    assert result.done == ["Task/a"] and store.get("Task/a").status is Status.APPLIED  # type: ignore[union-attr]
    assert set(result.skipped) == {"Task/b", "Task/c"} and store.get("Task/b") is None


def test_unchanged_upstreams_hand_down_their_recorded_outputs() -> None:
    store = MemoryStateStore()
    with store.lock("apply"):
        store.commit(ResourceState("Dataset/d", "fp", {}, {"uri": "artifact://d"}))
    got: dict[str, Mapping[str, Outputs]] = {}

    def run(step: Step, upstream: Mapping[str, Outputs]) -> Outputs:
        got[step.address] = upstream
        return {}

    with store.lock("apply"):
        execute(plan_of("Model/m"), {"Model/m": ("Dataset/d",)}, run, record, store)
    assert got["Model/m"] == {"Dataset/d": {"uri": "artifact://d"}}
