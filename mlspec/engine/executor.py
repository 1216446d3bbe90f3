"""Carrying out a plan: a parallel walk of its DAG, committing every step to state as it ends.

A step starts when every upstream step it depends on has succeeded, and receives their outputs.
A failed step is committed as tainted (the next plan redoes it), its dependents are skipped, and
independent branches go on. A step whose result is held (a Model whose candidate failed its
gates) is committed, and its dependents are withheld: not run, not failed. A step the plan marks
conditional is cut off when every upstream it waits on came out publishing what it published
before: it is committed with its new fingerprint and the outputs it had, and does not run (early
cutoff, as Bazel and Shake do it). When `cancel` is set (the first Ctrl-C), no new step starts;
steps in flight finish and are committed. Whatever happens to the process, state holds every step
that ended: the next plan sees the rest.

Steps run on worker threads; this module alone commits state, from the calling thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.errors import MlspecError, StepInterrupted
from mlspec.plan.model import Action, Plan, Step
from mlspec.sdk.step import StepResult
from mlspec.state.base import StateStore
from mlspec.state.model import ResourceState, Status

if TYPE_CHECKING:
    from mlspec.engine.reporter import Reporter
    from mlspec.registry import RegistryWrite

Outputs = dict[str, Any]
RunStep = Callable[[Step, Mapping[str, Outputs]], StepResult]  # (step, upstream outputs) -> result


@dataclass(frozen=True)
class Committed:
    """What state keeps of a finished step: its row, and the registry write that goes with it."""

    entry: ResourceState
    registry: RegistryWrite | None = None


class Hooks:
    """What the executor asks of the apply around it. The defaults: no cutoff, nothing registered."""

    def record(self, step: Step, result: StepResult | None, status: Status) -> Committed:
        raise NotImplementedError

    def unchanged(self, step: Step, entry: ResourceState) -> bool:
        """Did the step come out publishing what state held before it ran?"""
        return False

    def cut_off(self, step: Step) -> ResourceState | None:
        """The row of a conditional step that is not run (its new fingerprint, its old outputs)."""
        return None

    def describe(self, error: BaseException) -> str:
        """What the apply reports of a failed step (secrets masked, in the apply's hooks)."""
        return reason(error)


@dataclass
class ApplyResult:
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # address -> error
    skipped: dict[str, str] = field(default_factory=dict)  # address -> why
    interrupted: list[str] = field(default_factory=list)  # stopped by a second Ctrl-C: redone next time
    held: dict[str, str] = field(default_factory=dict)  # address -> why its dependents may not take its result
    withheld: dict[str, str] = field(default_factory=dict)  # address -> why: an upstream was held
    cutoff: dict[str, str] = field(default_factory=dict)  # address -> why it did not need to run
    outputs: dict[str, Outputs] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Held results are outcomes, not failures: a candidate that missed its gates is recorded as such."""
        return not self.failed and not self.skipped and not self.interrupted


class _Walk:
    """The bookkeeping of one walk: what waits on what, what is ready, what came out unchanged."""

    def __init__(self, plan: Plan, upstream: Mapping[str, tuple[str, ...]], result: ApplyResult,
                 reporter: Reporter | None) -> None:
        self.steps = {s.address: s for s in plan.steps if s.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)}
        self.upstream = upstream
        self.result = result
        self.reporter = reporter
        # Each step waits for its dependencies that are in the plan (the others are done already): a count
        # per step and a ready queue keep scheduling linear in the size of the plan.
        self.waiting: dict[str, int] = {}
        self.dependents: dict[str, list[str]] = {}
        for address in self.steps:
            deps = [d for d in upstream.get(address, ()) if d in self.steps]
            self.waiting[address] = len(deps)
            for dep in deps:
                self.dependents.setdefault(dep, []).append(address)
        self.ready = deque(address for address in self.steps if self.waiting[address] == 0)
        self.started: set[str] = set()
        self.unchanged: dict[str, str] = {}  # address -> the root that came out the same

    def notify(self, kind: str, step: Step, detail: str = "") -> None:
        if self.reporter is not None:
            self.reporter.event(kind, step, detail)

    def blocked(self, address: str) -> bool:
        return address in self.result.skipped or address in self.result.withheld

    def release(self, address: str) -> None:
        for child in self.dependents.get(address, ()):
            self.waiting[child] -= 1
            if self.waiting[child] == 0 and not self.blocked(child):
                self.ready.append(child)

    def stop_dependents(self, address: str, verb: str, withheld: bool = False) -> None:
        into = self.result.withheld if withheld else self.result.skipped
        queue = deque([(address, verb)])
        while queue:
            cause, how = queue.popleft()
            for child in self.dependents.get(cause, ()):
                if not self.blocked(child):
                    why = f"upstream {cause} {how}"
                    into[child] = why
                    self.notify("withheld" if withheld else "skipped", self.steps[child], why)
                    queue.append((child, "was withheld" if withheld else "was skipped"))

    def cutoff_root(self, step: Step) -> str | None:
        """The upstream whose unchanged result lets this step be cut off, or None when it must run."""
        if not step.conditional_on or not all(u in self.unchanged for u in step.conditional_on):
            return None
        return self.unchanged[step.conditional_on[0]]


def execute(
    plan: Plan,
    upstream: Mapping[str, tuple[str, ...]],
    run_step: RunStep,
    hooks: Hooks,
    store: StateStore,
    *,
    parallelism: int = 4,
    cancel: threading.Event | None = None,
    reporter: Reporter | None = None,
    outputs: dict[str, Outputs] | None = None,
) -> ApplyResult:
    """Apply `plan`'s changing steps; the caller holds the state lock. `upstream`: address -> deps.
    `outputs`: what each address hands on now (updated here as steps end; read by steps in flight)."""
    cancel = cancel or threading.Event()
    result = ApplyResult(outputs=outputs if outputs is not None else {e.address: e.outputs for e in store.list()})
    walk = _Walk(plan, upstream, result, reporter)
    running: dict[Future[StepResult], Step] = {}
    workers = max(1, parallelism)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlspec-step") as pool:
        while walk.ready or running:
            while walk.ready and len(running) < workers and not cancel.is_set():  # "started" means running
                step = walk.steps[walk.ready.popleft()]
                walk.started.add(step.address)
                if _cut_off(walk, step, hooks, store):
                    continue
                # Recorded as interrupted until it ends: after a kill -9 the next plan redoes it.
                store.commit(hooks.record(step, None, Status.INTERRUPTED).entry)
                inputs = {d: result.outputs.get(d, {}) for d in upstream.get(step.address, ())}
                running[pool.submit(run_step, step, inputs)] = step
                walk.notify("started", step)
            if not running:
                if walk.ready and not cancel.is_set():
                    continue  # only cut-off steps were ready: their dependents may be ready now
                break  # cancelled, or nothing can start
            # A short timeout keeps the main thread responsive to Ctrl-C (signal handlers run here).
            finished, _ = wait(running, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                _finish(walk, running.pop(future), future, hooks, store)
        for address, step in walk.steps.items():
            if address not in walk.started and not walk.blocked(address):
                result.skipped[address] = "cancelled before it started"
                walk.notify("skipped", step, "cancelled")
    _deletes(plan, run_step, store, walk, cancel, hooks)
    return result


def _cut_off(walk: _Walk, step: Step, hooks: Hooks, store: StateStore) -> bool:
    root = walk.cutoff_root(step)
    if root is None:
        return False
    entry = hooks.cut_off(step)
    if entry is None:
        return False
    store.commit(entry)
    why = f"{root} came out unchanged"
    walk.result.cutoff[step.address] = why
    walk.unchanged[step.address] = root
    walk.notify("cutoff", step, why)
    walk.release(step.address)
    return True


def _finish(walk: _Walk, step: Step, future: Future[StepResult], hooks: Hooks, store: StateStore) -> None:
    result = walk.result
    error = future.exception()
    if error is None:
        committed = hooks.record(step, future.result(), Status.APPLIED)
        store.commit(committed.entry, registry=committed.registry)
        entry = committed.entry
        result.outputs[step.address] = entry.outputs
        result.done.append(step.address)
        held = entry.outputs.get("held")
        walk.notify("held" if held else "done", step, str(held or ""))
        if held:
            result.held[step.address] = str(held)
            walk.stop_dependents(step.address, f"was held: {held}", withheld=True)
        elif hooks.unchanged(step, entry):
            walk.unchanged[step.address] = step.address
        walk.release(step.address)
    elif isinstance(error, StepInterrupted):
        result.interrupted.append(step.address)  # state already says interrupted
        walk.notify("interrupted", step, str(error))
        walk.stop_dependents(step.address, "was interrupted")
    else:
        store.commit(hooks.record(step, None, Status.TAINTED).entry)
        result.failed[step.address] = hooks.describe(error)
        walk.notify("failed", step, result.failed[step.address])
        walk.stop_dependents(step.address, "failed")


def _deletes(plan: Plan, run_step: RunStep, store: StateStore, walk: _Walk, cancel: threading.Event,
             hooks: Hooks) -> None:
    """After everything else: nothing still running can depend on them."""
    result = walk.result
    for step in (s for s in plan.steps if s.action is Action.DELETE):
        if cancel.is_set() or result.failed or result.interrupted:
            result.skipped[step.address] = "cancelled" if cancel.is_set() else "not run: an earlier step failed"
            walk.notify("skipped", step, result.skipped[step.address])
            continue
        walk.notify("started", step)
        try:
            run_step(step, {})
        except Exception as error:
            result.failed[step.address] = hooks.describe(error)
            walk.notify("failed", step, result.failed[step.address])
            continue
        store.remove(step.address)
        result.done.append(step.address)
        walk.notify("done", step)


def reason(error: BaseException) -> str:
    """Our errors speak for themselves; anything else is named by its type."""
    return str(error) if isinstance(error, MlspecError) else f"{type(error).__name__}: {error}"
