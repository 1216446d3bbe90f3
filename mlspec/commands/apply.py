from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from mlspec.commands.plan import load_saved, prepare, show_spec_errors
from mlspec.engine.executor import ApplyResult
from mlspec.engine.planner import PlanOptions
from mlspec.errors import EXIT_ERROR, EXIT_OK, SpecError
from mlspec.plan.fingerprint import digest
from mlspec.plan.model import Plan
from mlspec.render import plan as render
from mlspec.render.progress import ApplyProgress
from mlspec.state.model import now

EXIT_INTERRUPTED = 130


def run(
    options: PlanOptions,
    plan_file: Path | None,
    fmt: str,
    *,
    parallelism: int,
    lock_timeout: float,
    auto_approve: bool,
    style: Callable[..., str],
    allow_dirty: bool = False,
    allow_rewind: bool = False,
) -> int:
    from mlspec.audit.log import AuditLog
    from mlspec.engine.apply import already_applied, apply_plan, check_saved
    from mlspec.project import load_project
    from mlspec.repo.provenance import check_clean, check_forward, collect
    from mlspec.state import open_state

    saved = load_saved(plan_file) if plan_file is not None else None
    if saved is not None:
        recorded = saved.options or {}
        options = PlanOptions(tuple(recorded.get("targets", ())), tuple(recorded.get("replace", ())),
                              refresh_only=bool(recorded.get("refresh_only")), prune=recorded.get("prune"),
                              allow_destroy=bool(recorded.get("allow_destroy")))
    project = load_project()
    found = collect(project.root)
    if not allow_dirty:
        check_clean(found)  # before anything is written: a refused apply leaves no state behind
    store = open_state(project, create=True)
    audit = AuditLog(project.root)
    try:
        with store.lock("apply", timeout=lock_timeout):
            if not allow_rewind:
                check_forward(project.root, found, store.note("last_apply"))
            try:
                planned = prepare(store, options)
            except SpecError as err:
                return show_spec_errors(err, fmt, style)
            if saved is not None and already_applied(saved, planned.plan):
                if fmt == "json":
                    click.echo(json.dumps(_report(ApplyResult(), store.meta().serial, False), indent=2))
                else:
                    click.echo(f"{plan_file} was applied already: the live world matches it. Nothing to do.")
                return EXIT_OK
            if saved is not None:
                check_saved(saved, planned.plan)
            plan = planned.plan
            text = fmt == "text"
            if text:
                click.echo(render.render_text(plan, style))
            if not plan.has_changes:
                if fmt == "json":
                    click.echo(json.dumps(_report(ApplyResult(), store.meta().serial, plan.has_changes), indent=2))
                return EXIT_OK
            if text and saved is None and not auto_approve and sys.stdin.isatty():
                click.confirm("\nApply these changes?", abort=True)
            cancel, abort = threading.Event(), threading.Event()
            total = sum(1 for s in plan.steps if s.action.is_change)
            who = found.to_json()
            plan_digest = digest(plan.to_json())  # the same canonical JSON digest as fingerprints
            store.set_note("audit_head", audit.append("apply.started", {
                **who, "plan": plan_digest, "serial": plan.serial, "summary": plan.counts(),
                "steps": [{"address": s.address, "action": s.action.value} for s in plan.steps if s.action.is_change],
            }, head=store.note("audit_head")))
            with _interrupts(cancel, abort), ApplyProgress(total, quiet=fmt == "json") as progress:
                result = apply_plan(planned, store, parallelism=parallelism, cancel=cancel, abort=abort,
                                    on_event=progress.event, log=progress.log, commit=found.commit,
                                    meter=progress.meter)
            serial = store.meta().serial
            store.set_note("audit_head", audit.append("apply.finished", {
                **who, "plan": plan_digest, "serial": serial, "ok": result.ok, "cancelled": cancel.is_set(),
                "steps": _outcomes(plan, result),
            }, head=store.note("audit_head")))
            store.set_note("last_apply", {**who, "at": now(), "serial": serial, "ok": result.ok})
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(_report(result, serial, True), indent=2))
    else:
        _summary(result, style, cancelled=cancel.is_set())
    if cancel.is_set():
        return EXIT_INTERRUPTED  # 130 for Ctrl-C and for SIGTERM alike: "stopped, apply again to finish"
    return EXIT_OK if result.ok else EXIT_ERROR


def _report(result: ApplyResult, serial: int, changes: bool) -> dict[str, object]:
    return {"format_version": "1", "ok": result.ok, "changes": changes, "serial": serial, "done": result.done,
            "failed": result.failed, "skipped": result.skipped, "interrupted": result.interrupted,
            "held": result.held, "withheld": result.withheld}


def _summary(result: ApplyResult, style: Callable[..., str], *, cancelled: bool) -> None:
    click.echo()
    for address, why in result.failed.items():
        click.echo(style(f"failed: {address}", fg="red", bold=True) + f"\n  {why.replace(chr(10), chr(10) + '  ')}")
    for address, why in result.held.items():
        click.echo(style(f"held: {address}", fg="yellow", bold=True) + f" registered as a candidate, not promoted:"
                   f"\n  {why}")
        waiting = [a for a, reason in result.withheld.items() if reason.startswith(f"upstream {address} was held")]
        if waiting:
            click.echo(f"  not touched: {', '.join(waiting)} (they keep what they had)")
    if result.ok:
        held = f", {len(result.held)} held" if result.held else ""
        click.echo(style(f"Apply complete: {len(result.done)} step(s) done{held}.", fg="green", bold=True))
        return
    parts = [f"{len(result.done)} done", f"{len(result.failed)} failed", f"{len(result.skipped)} skipped"]
    if result.interrupted:
        parts.append(f"{len(result.interrupted)} interrupted")
    head = "Apply interrupted" if cancelled else "Apply failed"
    click.echo(style(f"{head}: {', '.join(parts)}.", fg="red", bold=True))
    click.echo("State holds every step that ended; run `mlspec apply` again to redo the rest.")


@contextmanager
def _interrupts(cancel: threading.Event, abort: threading.Event) -> Iterator[None]:
    """Ctrl-C once: start nothing new, let steps in flight finish and commit. Twice: stop them too
    (they are recorded interrupted and redone by the next apply). Three times: leave at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if not cancel.is_set():
            cancel.set()
            click.echo("\nStopping: no new step will start; waiting for the steps in flight "
                       "(Ctrl-C again to stop them).", err=True)
        elif not abort.is_set():
            abort.set()
            click.echo("\nStopping the steps in flight; they will be redone by the next apply.", err=True)
        else:
            raise KeyboardInterrupt

    def terminate(signum: int, frame: FrameType | None) -> None:
        # What `timeout`, a closed terminal or a cancelled CI job sends: stop now, as a second Ctrl-C
        # does, so the commands are stopped with us and the lock is released, not left behind.
        cancel.set()
        abort.set()
        click.echo(f"\n{signal.Signals(signum).name}: stopping the steps in flight; they will be redone by the "
                   "next apply.", err=True)

    previous = {sig: signal.signal(sig, handler) for sig, handler in
                ((signal.SIGINT, handle), (signal.SIGTERM, terminate), (signal.SIGHUP, terminate))}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _outcomes(plan: Plan, result: ApplyResult) -> list[dict[str, str]]:
    """Per changing step: what happened to it. Errors are the plugins' messages (secrets masked there)."""
    out = []
    for step in plan.steps:
        if not step.action.is_change:
            continue
        entry = {"address": step.address, "action": step.action.value}
        if step.address in result.failed:
            entry |= {"outcome": "failed", "error": result.failed[step.address][:500]}
        elif step.address in result.interrupted:
            entry["outcome"] = "interrupted"
        elif step.address in result.skipped:
            entry |= {"outcome": "skipped", "why": result.skipped[step.address]}
        elif step.address in result.withheld:
            entry |= {"outcome": "withheld", "why": result.withheld[step.address]}
        elif step.address in result.held:
            entry |= {"outcome": "held", "why": result.held[step.address]}
        else:
            entry["outcome"] = "done"
        out.append(entry)
    return out
