"""Carrying out a plan: a parallel walk of its DAG, committing every step to state as it ends.

A step starts when every upstream step it depends on has succeeded, and receives their outputs.
A failed step is committed as tainted (the next plan redoes it), its dependents are skipped, and
independent branches go on. When `cancel` is set (the first Ctrl-C), no new step starts; steps in
flight finish and are committed. Whatever happens to the process, state holds every step that
ended: the next plan sees the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mlspec.plan.model import Action, Plan, Step
from mlspec.state.base import StateStore
from mlspec.state.model import ResourceState, Status

Outputs = dict[str, Any]
RunStep = Callable[[Step, Mapping[str, Outputs]], Outputs]  # (step, upstream outputs) -> outputs
Record = Callable[[Step, Outputs, Status], ResourceState]  # what state keeps of a finished step


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # address -> error
    skipped: dict[str, str] = field(default_factory=dict)  # address -> why
    outputs: dict[str, Outputs] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


def execute(
    plan: Plan,
    upstream: Mapping[str, tuple[str, ...]],
    run_step: RunStep,
    record: Record,
    store: StateStore,
    *,
    parallelism: int = 4,
    cancel: threading.Event | None = None,
    on_event: Callable[[str, Step, str], None] | None = None,
) -> ApplyResult:
    """Apply `plan`'s changing steps; the caller holds the state lock. `upstream`: address -> deps."""
    cancel = cancel or threading.Event()
    notify = on_event or (lambda event, step, detail: None)
    result = ApplyResult()
    for entry in store.list():  # unchanged resources hand their recorded outputs downstream
        result.outputs[entry.address] = entry.outputs
    pending = {s.address: s for s in plan.steps if s.action.is_change and s.action is not Action.DELETE}
    deletes = [s for s in plan.steps if s.action is Action.DELETE]
    blocked: dict[str, str] = {}
    running: dict[Future[Outputs], Step] = {}
    with ThreadPoolExecutor(max_workers=max(1, parallelism), thread_name_prefix="mlspec-step") as pool:
        while pending or running:
            if not cancel.is_set():
                for address, step in list(pending.items()):
                    deps = upstream.get(address, ())
                    failed_dep = next((d for d in deps if d in result.failed or d in blocked), None)
                    if failed_dep is not None:
                        why = f"upstream {failed_dep} " + ("failed" if failed_dep in result.failed else "was skipped")
                        blocked[address] = why
                        result.skipped[address] = why
                        del pending[address]
                        notify("skipped", step, why)
                    elif all(d not in pending and d not in _in_flight(running) for d in deps):
                        del pending[address]
                        # Recorded as interrupted until it ends: after a kill -9 the next plan redoes it.
                        store.commit(record(step, result.outputs.get(address, {}), Status.INTERRUPTED))
                        inputs = {d: result.outputs.get(d, {}) for d in deps}
                        running[pool.submit(run_step, step, inputs)] = step
                        notify("started", step, "")
            if not running:
                break  # cancelled, or nothing can start
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                step = running.pop(future)
                error = future.exception()
                if error is None:
                    outputs = future.result()
                    store.commit(record(step, outputs, Status.APPLIED))
                    result.outputs[step.address] = outputs
                    result.done.append(step.address)
                    notify("done", step, "")
                else:
                    store.commit(record(step, {}, Status.TAINTED))
                    result.failed[step.address] = f"{type(error).__name__}: {error}"
                    notify("failed", step, result.failed[step.address])
        for address, step in pending.items():
            result.skipped[address] = "cancelled before it started"
            notify("skipped", step, "cancelled")
    for step in deletes if not cancel.is_set() and not result.failed else ():
        try:
            run_step(step, {})
            store.remove(step.address)
            result.done.append(step.address)
        except Exception as error:
            result.failed[step.address] = f"{type(error).__name__}: {error}"
    return result


def _in_flight(running: Mapping[Future[Outputs], Step]) -> set[str]:
    return {step.address for step in running.values()}
