from __future__ import annotations

import json
from pathlib import Path

import click

from mlspec.errors import EXIT_OK


def run_gc(delete: bool, fmt: str) -> int:
    from mlspec.engine.collect import collect

    found = collect(delete=delete)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", **found.to_json()}, indent=2))
        return EXIT_OK
    size = f"{found.bytes / 1e6:,.1f} MB" if found.bytes >= 1e5 else f"{found.bytes:,} bytes"
    if not found.unreferenced:
        click.echo(f"nothing to collect: all {found.kept} stored objects are referenced")
    elif found.deleted:
        click.echo(f"deleted {len(found.unreferenced)} unreferenced object(s), {size}; kept {found.kept}")
    else:
        for key in found.unreferenced[:20]:
            click.echo(f"  would delete {key}")
        more = len(found.unreferenced) - 20
        if more > 0:
            click.echo(f"  … and {more} more")
        click.echo(f"{len(found.unreferenced)} unreferenced object(s), {size}; kept {found.kept}. "
                   "Delete them with --delete.")
    return EXIT_OK


def run_pull(address: str, to: Path, version: int | None, fmt: str) -> int:
    from mlspec.engine.collect import export

    written = export(address, to, version=version)
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "directory": str(to), "files": written}, indent=2))
    else:
        click.echo(f"wrote {len(written)} file(s) to {to}: {', '.join(written)}")
    return EXIT_OK
