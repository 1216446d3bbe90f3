"""`mlspec apply`: the command around mlspec.engine.session.apply. What stays here is the process's:
the signal handlers (Ctrl-C once, twice, SIGTERM), the prompt, the progress bar and the summary."""

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

from mlspec.engine.executor import ApplyResult
from mlspec.engine.planner import PlanOptions
from mlspec.engine.session import ApplyOutcome, ApplySettings
from mlspec.errors import ApprovalError, SpecError
from mlspec.plan.model import Plan
from mlspec.render import plan as render
from mlspec.render.echo import show_spec_errors
from mlspec.render.progress import ApplyProgress


def run(
    options: PlanOptions,
    plan_file: Path | None,
    fmt: str,
    *,
    settings: ApplySettings,
    auto_approve: bool,
    style: Callable[..., str],
) -> int:
    from mlspec.engine import session
    from mlspec.plan.saved import load

    saved = load(plan_file) if plan_file is not None else None
    cancel, abort = threading.Event(), threading.Event()

    progress = ApplyProgress(quiet=fmt == "json")

    def review(plan: Plan) -> bool:
        if fmt == "text":
            click.echo(render.render_text(plan, style))
        if plan.has_changes and saved is None and not auto_approve:
            if fmt != "text" or not sys.stdin.isatty():
                raise ApprovalError("there is no terminal to ask whether to apply these changes: pass -y "
                                    "(--auto-approve) to apply without asking, or apply a reviewed plan "
                                    "(`mlspec plan -out plan.json`, then `mlspec apply plan.json`)")
            click.confirm("\nApply these changes?", abort=True)
        progress.expect(sum(1 for s in plan.steps if s.action.is_change))
        return True

    try:
        with _interrupts(cancel, abort), progress:
            outcome = session.apply(options, saved=saved, settings=settings, reporter=progress, review=review,
                                    cancel=cancel, abort=abort)
    except SpecError as err:
        return show_spec_errors(err, fmt, style)
    if fmt == "json":
        click.echo(json.dumps(outcome.to_json(), indent=2))
    elif outcome.already_applied:
        click.echo(f"{plan_file} was applied already: the live world matches it. Nothing to do.")
    elif outcome.changes:
        _summary(outcome, style)
    return outcome.exit_code


def _summary(outcome: ApplyOutcome, style: Callable[..., str]) -> None:
    result: ApplyResult = outcome.result
    click.echo()
    for address, why in result.failed.items():
        click.echo(style(f"failed: {address}", fg="red", bold=True) + f"\n  {why.replace(chr(10), chr(10) + '  ')}")
    for address, why in result.held.items():
        click.echo(style(f"held: {address}", fg="yellow", bold=True) + f" registered as a candidate, not promoted:"
                   f"\n  {why}")
        waiting = [a for a, reason in result.withheld.items() if reason.startswith(f"upstream {address} was held")]
        if waiting:
            click.echo(f"  not touched: {', '.join(waiting)} (they keep what they had)")
    if result.cutoff:
        roots = sorted(set(result.cutoff.values()))
        click.echo(style(f"{len(result.cutoff)} step{'s' if len(result.cutoff) != 1 else ''} cut off:", bold=True)
                   + f" {'; '.join(roots)} ({', '.join(result.cutoff)} kept what they had)")
    if result.ok:
        held = f", {len(result.held)} held" if result.held else ""
        cut = f", {len(result.cutoff)} cut off" if result.cutoff else ""
        ran = len(result.done)
        click.echo(style(f"Apply complete: {ran} step(s) done{held}{cut}.", fg="green", bold=True))
        _tries(result)
        return
    parts = [f"{len(result.done)} done", f"{len(result.failed)} failed", f"{len(result.skipped)} skipped"]
    if result.interrupted:
        parts.append(f"{len(result.interrupted)} interrupted")
    head = "Apply interrupted" if outcome.cancelled else "Apply failed"
    click.echo(style(f"{head}: {', '.join(parts)}.", fg="red", bold=True))
    click.echo("State holds every step that ended; run `mlspec apply` again to redo the rest.")


def _tries(result: ApplyResult) -> None:
    """What a step said a person can run to see its result (outputs' `try`: a service's curl line)."""
    shown = [(a, result.outputs.get(a) or {}) for a in result.done]
    tries = [(a, o) for a, o in shown if isinstance(o.get("try"), str)]
    if tries:
        click.echo()
    for address, out in tries:
        click.echo(f"{address}: {out.get('url') or ''}".rstrip(": ") + f"\n  {out['try']}")


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
