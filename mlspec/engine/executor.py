"""Carrying out a plan: a parallel walk of its DAG, committing every step to state as it ends.

A step starts when every upstream step it depends on has succeeded, and receives their outputs.
A failed step is committed as tainted (the next plan redoes it), its dependents are skipped, and
independent branches go on. A step whose outputs say `held` (a Model whose candidate failed its
gates) is committed, and its dependents are withheld: not run, not failed. When `cancel` is set
(the first Ctrl-C), no new step starts; steps in flight finish and are committed. Whatever
happens to the process, state holds every step that ended: the next plan sees the rest.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from mlspec.errors import MlspecError
from mlspec.plan.model import Action, Plan, Step
from mlspec.plugin import StepInterrupted
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
    interrupted: list[str] = field(default_factory=list)  # stopped by a second Ctrl-C: redone next time
    held: dict[str, str] = field(default_factory=dict)  # address -> why its dependents may not take its result
    withheld: dict[str, str] = field(default_factory=dict)  # address -> why: an upstream was held
    outputs: dict[str, Outputs] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Held results are outcomes, not failures: a candidate that missed its gates is recorded as such."""
        return not self.failed and not self.skipped and not self.interrupted


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
    notes: Callable[[str], Mapping[str, Any]] | None = None,
) -> ApplyResult:
    """Apply `plan`'s changing steps; the caller holds the state lock. `upstream`: address -> deps.
    `notes(address)`: notes to set in the same transaction as that step's result (the registry)."""
    cancel = cancel or threading.Event()
    notify = on_event or (lambda event, step, detail: None)
    result = ApplyResult()
    for entry in store.list():  # unchanged resources hand their recorded outputs downstream
        result.outputs[entry.address] = entry.outputs
    steps = {s.address: s for s in plan.steps if s.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)}
    deletes = [s for s in plan.steps if s.action is Action.DELETE]
    # Each step waits for its dependencies that are in the plan (the others are done already): a count
    # per step and a ready queue keep scheduling linear in the size of the plan.
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    for address in steps:
        deps = [d for d in upstream.get(address, ()) if d in steps]
        waiting[address] = len(deps)
        for dep in deps:
            dependents.setdefault(dep, []).append(address)
    ready = deque(address for address in steps if waiting[address] == 0)
    started: set[str] = set()

    def skip_dependents(address: str, verb: str, into: dict[str, str] | None = None) -> None:
        into = result.skipped if into is None else into
        queue = deque([(address, verb)])
        while queue:
            cause, how = queue.popleft()
            for child in dependents.get(cause, ()):
                if child not in result.skipped and child not in result.withheld:
                    why = f"upstream {cause} {how}"
                    into[child] = why
                    notify("withheld" if into is result.withheld else "skipped", steps[child], why)
                    queue.append((child, "was withheld" if into is result.withheld else "was skipped"))

    running: dict[Future[Outputs], Step] = {}
    workers = max(1, parallelism)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlspec-step") as pool:
        while ready or running:
            while ready and len(running) < workers and not cancel.is_set():  # "started" means running
                address = ready.popleft()
                step = steps[address]
                started.add(address)
                # Recorded as interrupted until it ends: after a kill -9 the next plan redoes it.
                store.commit(record(step, result.outputs.get(address, {}), Status.INTERRUPTED), durable=False)
                inputs = {d: result.outputs.get(d, {}) for d in upstream.get(address, ())}
                running[pool.submit(run_step, step, inputs)] = step
                notify("started", step, "")
            if not running:
                break  # cancelled, or nothing can start
            # A short timeout keeps the main thread responsive to Ctrl-C (signal handlers run here).
            finished, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
            store.sync()  # while a long step runs, the results before it still reach the disk in time
            for future in finished:
                step = running.pop(future)
                error = future.exception()
                if error is None:
                    entry = record(step, future.result(), Status.APPLIED)
                    store.commit(entry, notes=notes(step.address) if notes is not None else None)
                    result.outputs[step.address] = entry.outputs
                    result.done.append(step.address)
                    held = entry.outputs.get("held")
                    notify("held" if held else "done", step, str(held or ""))
                    if held:
                        result.held[step.address] = str(held)
                        skip_dependents(step.address, f"was held: {held}", result.withheld)
                    for child in dependents.get(step.address, ()):
                        waiting[child] -= 1
                        if waiting[child] == 0 and child not in result.skipped and child not in result.withheld:
                            ready.append(child)
                elif isinstance(error, StepInterrupted):
                    result.interrupted.append(step.address)  # state already says interrupted
                    notify("interrupted", step, str(error))
                    skip_dependents(step.address, "was interrupted")
                else:
                    store.commit(record(step, {}, Status.TAINTED))
                    result.failed[step.address] = _reason(error)
                    notify("failed", step, result.failed[step.address])
                    skip_dependents(step.address, "failed")
        for address, step in steps.items():
            if address not in started and address not in result.skipped and address not in result.withheld:
                result.skipped[address] = "cancelled before it started"
                notify("skipped", step, "cancelled")
    for step in deletes:  # after everything else: nothing still running can depend on them
        if cancel.is_set() or result.failed or result.interrupted:
            result.skipped[step.address] = "cancelled" if cancel.is_set() else "not run: an earlier step failed"
            notify("skipped", step, result.skipped[step.address])
            continue
        notify("started", step, "")
        try:
            run_step(step, {})
        except Exception as error:
            result.failed[step.address] = _reason(error)
            notify("failed", step, result.failed[step.address])
            continue
        store.remove(step.address)
        result.done.append(step.address)
        notify("done", step, "")
    return result


def _reason(error: BaseException) -> str:
    """Our errors speak for themselves; anything else is named by its type."""
    return str(error) if isinstance(error, MlspecError) else f"{type(error).__name__}: {error}"
