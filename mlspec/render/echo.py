"""Printing shared by the commands: diagnostics of a validation pass, of invalid specs that stop a
plan, and of specs at a git ref. Commands never import each other; what two of them print alike
lives here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mlspec.errors import EXIT_ERROR

if TYPE_CHECKING:
    from mlspec.errors import SpecError
    from mlspec.registry import Entry
    from mlspec.spec.diagnostics import Diagnostic
    from mlspec.validation import ValidationReport


def show_report(report: ValidationReport, fmt: str, style: Callable[..., str]) -> None:
    """Print a report's diagnostics; shared by every command that validates first."""
    from mlspec.render import diagnostics as render

    if fmt == "json":
        click.echo(
            render.render_json(
                report.diagnostics, valid=report.ok, files=len(report.files), resources=report.resource_count,
                parsed=report.parsed, mode=report.mode, seconds=round(report.seconds, 4),
            )
        )
        return
    if fmt == "github":
        if report.diagnostics:
            click.echo(render.render_github(report.diagnostics))
        return
    if report.diagnostics:
        click.echo(render.render_text(report.diagnostics, render.SourceLines(report.project.root), style))
        click.echo()
    click.echo(
        render.summary_line(len(report.errors), len(report.warnings), len(report.files),
                            report.resource_count, report.seconds)
    )


def show_spec_errors(err: SpecError, fmt: str, style: Callable[..., str]) -> int:
    """Invalid specs stop a plan exactly as `mlspec validate` reports them."""
    from mlspec.project import find_root
    from mlspec.render import diagnostics

    if fmt == "json":
        click.echo(diagnostics.render_json(err.diagnostics, valid=False))
    else:
        click.echo(diagnostics.render_text(err.diagnostics, diagnostics.SourceLines(find_root()), style), err=True)
        click.echo(style(f"\nerror: {err}; nothing was planned", fg="red", bold=True), err=True)
    return EXIT_ERROR


def show_ref_errors(diagnostics: list[Diagnostic], texts: dict[str, str], fmt: str, style: Callable[..., str]) -> None:
    """Specs at a ref that do not parse, as `REF:path:line:col`, on stderr (JSON carries them inline)."""
    if not diagnostics or fmt == "json":
        return
    from mlspec.project import find_root
    from mlspec.render import diagnostics as render_diagnostics

    sources = render_diagnostics.SourceLines(find_root(), texts)
    click.echo(render_diagnostics.render_text(diagnostics, sources, style) + "\n", err=True)


def show_versions(address: str, entry: Entry, fmt: str, style: Callable[..., str],
                  describe: Callable[[dict[str, Any]], tuple[str, list[str]]],
                  failed: str = "failed its gates") -> None:
    """A registry entry, newest version first (`mlspec models show`, `mlspec prompts show`): per version
    its aliases, time, verdict and digest, then what `describe(record)` says of it (one line's tail and
    the lines under it), then the last alias moves, with their reasons."""
    import json

    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "address": address, **entry.to_json()}, indent=2))
        return
    click.echo(style(address, bold=True))
    for record in reversed(entry.versions):
        aliases = entry.aliases_of(record["version"])
        verdict = "passed" if record.get("gates_passed") else style(failed, fg="red")
        head = f"  v{record['version']}" + (f" [{', '.join(aliases)}]" if aliases else "")
        tail, below = describe(record)
        click.echo(f"{style(head, bold=True)}  {str(record.get('created_at', ''))[:19]}  {verdict}  "
                   f"digest {str(record.get('digest', ''))[:12]}  {tail}")
        for line in below:
            click.echo(line)
    if entry.history:
        click.echo("  history:")
        for move in entry.history[-10:]:
            was = f"v{move['from']}" if move.get("from") else "none"
            why = f": {move['why']}" if move.get("why") else ""
            click.echo(f"    {move['at'][:19]}  {move['alias']}: {was} -> v{move['to']} ({move['how']}){why}")
