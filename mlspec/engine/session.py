"""The library engine: plan and apply from Python with every guarantee the CLI gives.

`mlspec apply` is a thin command over `apply()` here, so a Python caller gets the same behaviour:
the work tree must be clean and the commit must descend from the last applied one, the state lock is
held throughout, the saved plan (if any) is checked against a fresh one, the audit log records the
start and the end with who and which commit, and the last apply's provenance is kept. Only the
process-level concerns stay in the command: signal handlers, the prompt, and drawing.

    from mlspec.engine import session
    from mlspec.engine.planner import PlanOptions

    planned = session.plan(PlanOptions(), root=Path("specs-repo"))
    outcome = session.apply(PlanOptions(), root=Path("specs-repo"))
    assert outcome.result.ok
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.engine.executor import ApplyResult
from mlspec.engine.planner import Planned, PlanOptions, digests_for, make_plan
from mlspec.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, StateMissingError
from mlspec.plan.fingerprint import digest
from mlspec.plan.model import Plan
from mlspec.plan.saved import NO_STATE
from mlspec.state.model import now

if TYPE_CHECKING:
    from mlspec.engine.reporter import Meter, Reporter
    from mlspec.masking import Mask
    from mlspec.plan.model import Step
    from mlspec.project import Project
    from mlspec.state.base import StateReader, StateStore


@dataclass(frozen=True)
class ApplySettings:
    parallelism: int = 4
    lock_timeout: float = 0.0  # seconds to wait for another run's lock
    allow_dirty: bool = False  # apply a work tree with uncommitted changes
    allow_rewind: bool = False  # apply a commit that does not descend from the last applied one


@dataclass
class ApplyOutcome:
    """What an apply did. `planned` is None only when a saved plan turned out applied already."""

    planned: Planned | None
    result: ApplyResult = field(default_factory=ApplyResult)
    serial: int = 0
    already_applied: bool = False
    declined: bool = False  # the review callback said no: nothing was changed
    cancelled: bool = False

    @property
    def changes(self) -> bool:
        return self.planned is not None and self.planned.plan.has_changes and not self.declined

    @property
    def exit_code(self) -> int:
        if self.cancelled:
            return EXIT_INTERRUPTED  # 130 for Ctrl-C and for SIGTERM alike: "stopped, apply again to finish"
        return EXIT_OK if self.result.ok else EXIT_ERROR

    def to_json(self) -> dict[str, Any]:
        result = self.result
        return {"format_version": "1", "ok": result.ok, "changes": self.changes, "serial": self.serial,
                "done": result.done, "failed": result.failed, "skipped": result.skipped,
                "interrupted": result.interrupted, "held": result.held, "withheld": result.withheld,
                "cutoff": result.cutoff}


def prepare(store: StateReader, options: PlanOptions, progress: Callable[[str], None] | None = None,
            root: Path | None = None) -> Planned:
    """Specs (validated), plugins, observations, plan: what `plan` shows and `apply` carries out."""
    from mlspec.discovery import Registry
    from mlspec.spec.specset import load_specs

    paused = gc.isenabled()
    gc.disable()  # planning allocates many small, long-lived objects and frees none: collections are pure cost
    try:
        specs = load_specs(root)
        registry = Registry(prefer=specs.project.setting("plugin_for"))
        with digests_for(specs.project.root) as digests:
            return make_plan(specs, store, registry, digests, options, on_progress=progress)
    finally:
        if paused:
            gc.enable()


@contextmanager
def reading_state(project: Project | None = None) -> Iterator[StateReader]:
    """The state to plan against; before the first apply, an empty one (nothing is created by a plan)."""
    from mlspec.project import load_project
    from mlspec.state import open_state
    from mlspec.state.memory import MemoryStateStore

    store: StateStore
    try:
        store = open_state(project or load_project(), create=False)
    except StateMissingError:
        store = MemoryStateStore(lineage=NO_STATE)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def writing_state(project: Project | None = None, *, create: bool = False) -> Iterator[StateStore]:
    """The state to change; without `create`, StateMissingError when nothing was applied yet."""
    from mlspec.project import load_project
    from mlspec.state import open_state

    store = open_state(project or load_project(), create=create)
    try:
        yield store
    finally:
        store.close()


def plan(options: PlanOptions | None = None, *, root: Path | None = None) -> Planned:
    """Plan against the project's state, creating nothing. SpecError when the specs are invalid."""
    from mlspec.project import load_project

    project = load_project(root)
    with reading_state(project) as store:
        planned = prepare(store, options or PlanOptions(), root=project.root)
        info = getattr(store, "lock_info", None)
        planned.lock = info() if info is not None else None
        return planned


def pull(addresses: tuple[str, ...] = (), *, root: Path | None = None) -> dict[str, list[str]]:
    """Write back the files that applied resources wrote in the repo and that are missing here (a
    fresh clone), from the artifact store: address -> the paths written. State is only read."""
    from mlspec.address import Address
    from mlspec.discovery import Registry
    from mlspec.errors import StateError
    from mlspec.project import load_project
    from mlspec.sdk.contract import materializer

    project = load_project(root)
    registry = Registry(prefer=project.setting("plugin_for"))
    artifacts = str(project.setting("artifacts", "url"))
    with reading_state(project) as store:
        entries = {e.address: e for e in store.list()}
    unknown = [a for a in addresses if a not in entries]
    if unknown:
        raise StateError(f"`{unknown[0]}` is not in the state: nothing of it to pull")
    written: dict[str, list[str]] = {}
    for address in addresses or tuple(entries):
        kind = Address(address).kind
        materialize = materializer(registry.for_kind(kind)) if registry.has(kind) else None
        if materialize is not None:
            found = list(materialize(entries[address].outputs, project.root, artifacts))
            if found:
                written[address] = found
    return written


def record_edit(store: StateStore, root: Path, event: str, fields: dict[str, Any]) -> None:
    """Edits of state by hand are part of its history, as applies are (the caller holds the lock)."""
    from mlspec.repo.provenance import collect

    store.append_audit(event, {**collect(root).to_json(), **fields})


def apply(
    options: PlanOptions | None = None,
    *,
    root: Path | None = None,
    saved: Plan | None = None,
    settings: ApplySettings | None = None,
    reporter: Reporter | None = None,
    review: Callable[[Plan], bool] | None = None,
    cancel: threading.Event | None = None,
    abort: threading.Event | None = None,
    runner: Executor | None = None,
) -> ApplyOutcome:
    """Plan under the lock and carry the plan out. `saved`: apply exactly this reviewed plan (refused
    when state or specs moved since). `review(plan)`: shown the plan; False leaves everything as it
    was. `cancel`/`abort`: the first and second Ctrl-C. SpecError when the specs are invalid."""
    from mlspec.engine.apply import already_applied, apply_plan, check_saved
    from mlspec.project import load_project
    from mlspec.repo.provenance import check_clean, check_forward, collect

    if saved is not None:
        options = PlanOptions.from_json(saved.options or {})
    options = options or PlanOptions()
    settings = settings or ApplySettings()
    project = load_project(root)
    tree = collect(project.root)
    spec_files = _spec_files(project)
    found = tree.covering(spec_files)
    if not settings.allow_dirty:  # before anything is written: a refused apply leaves no state behind
        check_clean(found)
    cancel = cancel or threading.Event()
    abort = abort or threading.Event()
    with writing_state(project, create=True) as store, store.lock("apply", timeout=settings.lock_timeout) as held:
        if held.replaced:  # its holder died holding it (kill -9, a lost CI runner): the kernel let it go
            from mlspec.sdk import processes

            left = processes.marked(processes.RUN_MARK, held.replaced_id or "")
            processes.stop(left)  # what the dead apply started and could not stop
            store.append_audit("lock.taken_over", {**found.to_json(), "stale": held.replaced,
                                                   "stopped": sorted(left)})
            if reporter is not None:
                reporter.log(f"The last holder of the state's lock is gone: {held.replaced}. Its lock was taken over; "
                             "`mlspec plan` shows what it left undone.")
        if not settings.allow_rewind:
            check_forward(project.root, found, store.note("last_apply"))
        planned = prepare(store, options, root=project.root)
        # What the plan read besides the specs: a script nobody added to git makes the tree dirty too.
        found = tree.covering(spec_files, {name for want in planned.desired.values() for name in want.inputs})
        if not settings.allow_dirty:
            check_clean(found)
        if saved is not None and already_applied(saved, planned.plan):
            return ApplyOutcome(None, serial=store.meta().serial, already_applied=True)
        if saved is not None:
            check_saved(saved, planned.plan)
        plan_ = planned.plan
        if review is not None and not review(plan_):
            return ApplyOutcome(planned, serial=store.meta().serial, declined=True)
        if not plan_.has_changes:
            return ApplyOutcome(planned, serial=store.meta().serial)
        who = found.to_json()
        mask = planned.mask
        reporter = MaskedReporter(reporter, mask) if reporter is not None and mask else reporter
        plan_digest = digest(plan_.to_json())  # the same canonical JSON digest as fingerprints
        store.append_audit("apply.started", {
            **who, "plan": plan_digest, "serial": plan_.serial, "summary": plan_.counts(),
            "steps": [{"address": s.address, "action": s.action.value} for s in plan_.steps if s.action.is_change],
        })
        try:
            result = apply_plan(planned, store, parallelism=settings.parallelism, cancel=cancel, abort=abort,
                                reporter=reporter, commit=found.commit, runner=runner, run=held.id)
        except BaseException:
            abort.set()  # the state cannot be written (a full disk): stop what runs, release the lock, say why
            raise
        serial = store.meta().serial
        store.append_audit("apply.finished", mask.data({
            **who, "plan": plan_digest, "serial": serial, "ok": result.ok, "cancelled": cancel.is_set(),
            "steps": outcomes(plan_, result),
        }))
        store.set_note("last_apply", {**who, "at": now(), "serial": serial, "ok": result.ok})
    return ApplyOutcome(planned, result, serial, cancelled=cancel.is_set())


class MaskedReporter:
    """A reporter whose every line and detail has the secrets masked, whichever step printed them."""

    def __init__(self, inner: Reporter, mask: Mask) -> None:
        self.inner = inner
        self.mask = mask

    def event(self, kind: str, step: Step, detail: str) -> None:
        self.inner.event(kind, step, self.mask.text(detail))

    def log(self, line: str) -> None:
        self.inner.log(self.mask.text(line))

    def meter(self, address: str) -> Meter | None:
        found = self.inner.meter(address)
        if found is None:
            return None
        return lambda done, total, note: found(done, total, self.mask.text(note))


def _spec_files(project: Project) -> list[str]:
    """The files every plan reads: mlspec.yaml and the spec files its globs select."""
    from mlspec.project import discover
    from mlspec.spec.vocabulary import PROJECT_FILE

    files, _ = discover(project)
    return [PROJECT_FILE, *(f.rel for f in files)] if project.config_file else [f.rel for f in files]


def outcomes(plan: Plan, result: ApplyResult) -> list[dict[str, str]]:
    """Per changing step: what happened to it. Errors are the plugins' messages (secrets masked there)."""
    out = []
    for step in plan.steps:
        if not step.action.is_change:
            continue
        entry = {"address": step.address, "action": step.action.value}
        if step.address in result.failed:
            # The outcome, never what a command printed: the error's first line is the plugin's own words.
            entry |= {"outcome": "failed", "error": result.failed[step.address].split("\n", 1)[0][:300]}
        elif step.address in result.interrupted:
            entry["outcome"] = "interrupted"
        elif step.address in result.skipped:
            entry |= {"outcome": "skipped", "why": result.skipped[step.address]}
        elif step.address in result.withheld:
            entry |= {"outcome": "withheld", "why": result.withheld[step.address]}
        elif step.address in result.held:
            entry |= {"outcome": "held", "why": result.held[step.address]}
        elif step.address in result.cutoff:
            entry |= {"outcome": "cutoff", "why": result.cutoff[step.address]}
        else:
            entry["outcome"] = "done"
        out.append(entry)
    return out
