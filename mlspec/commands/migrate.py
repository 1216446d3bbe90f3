from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import click

from mlspec.errors import EXIT_ERROR, EXIT_OK, MlspecError
from mlspec.spec.migrate import FileMigration, migrate_text


def run(paths: list[Path], dry_run: bool, fmt: str, style: Callable[..., str]) -> int:
    from mlspec.project import discover, load_project

    project = load_project()
    files, problems = discover(project, paths or None)
    missing = [d for d in problems if d.is_error]
    if missing:  # a path that does not exist, a symlink out of the repo: say so, migrate nothing
        for d in missing:
            click.echo(f"{d.file}: {d.message}", err=True)
        return EXIT_ERROR
    results: list[FileMigration] = []
    for spec_file in files:
        try:
            text = Path(spec_file.path).read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            results.append(FileMigration(spec_file.rel, "", "", problems=[f"cannot read: {err}"]))
            continue
        found = migrate_text(text, spec_file.rel)
        if found.changed and not dry_run and not found.problems:
            _write(Path(spec_file.path), found.after)
        results.append(found)
    changed = [r for r in results if r.changed]
    broken = [r for r in results if r.problems]
    if fmt == "json":
        click.echo(json.dumps({"format_version": "1", "dry_run": dry_run, "files": [
            {"file": r.file, "changed": r.changed, "applied": r.applied, "problems": r.problems, "diff": r.diff()}
            for r in results if r.changed or r.problems]}, indent=2))
        return EXIT_ERROR if broken else EXIT_OK
    for result in changed:
        if dry_run:
            click.echo(_coloured(result.diff(), style))
        else:
            click.echo(f"migrated {result.file}: " + "; ".join(result.applied))
    for result in broken:
        click.echo(f"{style(result.file, bold=True)}: {style('not migrated', fg='red', bold=True)}: "
                   + "; ".join(result.problems), err=True)
    verb = "would migrate" if dry_run else "migrated"
    click.echo(f"{verb} {len(changed)} of {len(results)} spec files" + (
        "" if changed or broken else ": every spec is already current") + (
        f"; {len(broken)} left alone" if broken else "") + (". Run without --dry-run to write." if dry_run and
                                                             changed else "."))
    return EXIT_ERROR if broken else EXIT_OK


def _coloured(diff: str, style: Callable[..., str]) -> str:
    out = []
    for line in diff.splitlines():
        colour = "green" if line.startswith("+") and not line.startswith("+++") else (
            "red" if line.startswith("-") and not line.startswith("---") else None)
        out.append(style(line, fg=colour) if colour else line)
    return "\n".join(out)


def _write(path: Path, text: str) -> None:
    """Atomically, keeping the file's mode: an interrupted migrate leaves each file old or new. A
    symlinked spec is migrated where it points, and stays a link."""
    path = path.resolve()
    tmp = path.with_name(f".{path.name}.mlspec-migrate.tmp")
    try:
        tmp.write_text(text, "utf-8")
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise MlspecError(f"cannot write {path}: {err.strerror}") from err
