"""Printing shared by the commands: diagnostics of a validation pass, of invalid specs that stop a
plan, and of specs at a git ref. Commands never import each other; what two of them print alike
lives here."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from mlspec.errors import EXIT_ERROR

if TYPE_CHECKING:
    from mlspec.errors import SpecError
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
