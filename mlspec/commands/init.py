from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec.errors import EXIT_OK
from mlspec.scaffold import init


def run(directory: Path, *, force: bool, fmt: str, install: str | None = None) -> int:
    created = init(directory, force=force, install=install)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "files": [
            {"path": str(c.path), "skipped": c.skipped} for c in created]}, indent=2))
        return EXIT_OK
    for c in created:
        click.echo(f"  {'exists ' if c.skipped else 'created'}  {c.path}")
    if any(c.skipped for c in created):
        click.echo("Existing files were kept; use --force to overwrite them.")
    click.echo(f"\nNext: cd {directory} && git init && pre-commit install && mlspec validate")
    return EXIT_OK
