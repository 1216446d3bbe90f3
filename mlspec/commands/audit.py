from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import click

from mlspec.audit.log import AuditLog, parse_since
from mlspec.errors import EXIT_ERROR, EXIT_OK, StateMissingError
from mlspec.project import load_project


def _log() -> tuple[AuditLog, dict[str, Any] | None]:
    """The audit chain wherever the state's backend keeps it, and where the state says it ends."""
    from mlspec.state import open_state

    project = load_project()
    try:
        store = open_state(project, create=False)
    except StateMissingError:
        return AuditLog(project.root), None
    try:
        return store.audit_log(), store.audit_head()
    finally:
        store.close()


def run_verify(fmt: str, style: Callable[..., str]) -> int:
    log, head = _log()
    count, problems = log.verify(head)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "ok": not problems, "entries": count, "path": str(log.path),
                               "problems": [{"line": p.line, "message": p.message} for p in problems]}, indent=2))
    elif problems:
        for problem in problems:
            click.echo(f"{log.path}:{problem.line}: {style('broken', fg='red', bold=True)}: {problem.message}")
        click.echo(style(f"\nThe audit log has been tampered with or damaged: {len(problems)} problem(s) in "
                         f"{count} entries.", fg="red", bold=True))
    else:
        click.echo(f"ok: {count} entries, each chained to the one before, ending where the state says.")
    return EXIT_ERROR if problems else EXIT_OK


def run_log(address: str | None, since: str | None, fmt: str) -> int:
    log, _ = _log()
    after = parse_since(since) if since is not None else None
    shown = []
    for entry in log.entries():
        if after is not None and _when(entry) < after:
            continue
        if address is not None and address not in {s.get("address") for s in entry.get("steps", ())}:
            continue
        shown.append(entry)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "entries": shown}, indent=2, ensure_ascii=False))
        return EXIT_OK
    for entry in shown:
        commit = (entry.get("commit") or "-")[:8]
        steps = entry.get("steps", ())
        if address is not None:
            steps = [s for s in steps if s.get("address") == address]
        line = f"{entry.get('at')}  #{entry.get('seq')}  {entry.get('event')}  by {entry.get('who')}  commit {commit}"
        if entry.get("branch"):
            line += f" ({entry['branch']}{', dirty' if entry.get('dirty') else ''})"
        click.echo(line)
        for step in steps:
            outcome = f" -> {step['outcome']}" if "outcome" in step else ""
            click.echo(f"    {step.get('action')} {step.get('address')}{outcome}")
    if not shown:
        click.echo("no audit entries" + (" match" if address or since else " yet"), err=True)
    return EXIT_OK


def _when(entry: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(str(entry.get("at")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
