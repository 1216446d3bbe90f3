from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from mlspec.errors import EXIT_ERROR, EXIT_OK
from mlspec.render import diagnostics as render
from mlspec.validation import ValidationReport, validate


def run(
    project: Path | None,
    paths: list[Path],
    fmt: str,
    *,
    use_cache: bool,
    jobs: int | None,
    style: Callable[..., str],
) -> int:
    report = validate(project, paths or None, use_cache=use_cache, jobs=jobs)
    show(report, fmt, style)
    return EXIT_OK if report.ok else EXIT_ERROR


def show(report: ValidationReport, fmt: str, style: Callable[..., str]) -> None:
    """Print a report's diagnostics; shared by every command that validates first."""
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
