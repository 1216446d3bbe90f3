from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec import schemas
from mlspec.errors import EXIT_OK, MlspecError


def run(directory: Path, *, check: bool, kind: str | None, fmt: str) -> int:
    if kind is not None:
        from mlspec.spec.kinds import KINDS
        from mlspec.spec.suggest import did_you_mean

        if kind not in KINDS:
            hint = did_you_mean(kind, KINDS)
            raise MlspecError(f"unknown kind `{kind}`" + (f"; {hint}" if hint else ""))
        click.echo(schemas.dumps(schemas.generate()[schemas.file_name(kind)]), nl=False)
        return EXIT_OK
    if check:
        stale = schemas.stale(directory)
        if fmt == "json":
            click.echo(json.dumps({"format_version": "1", "directory": str(directory), "stale": stale}))
        schemas.check(directory)
        if fmt == "text":
            click.echo(f"schemas in {directory} are up to date")
        return EXIT_OK
    written = schemas.write(directory)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "written": [str(p) for p in written]}))
    else:
        click.echo(f"wrote {len(written)} schema file(s) to {directory}" if written else f"{directory} is up to date")
    return EXIT_OK
