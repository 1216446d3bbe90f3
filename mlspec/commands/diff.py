from __future__ import annotations

from collections.abc import Callable

import click

from mlspec.errors import EXIT_ERROR, EXIT_OK
from mlspec.render import specdiff as render
from mlspec.render.echo import show_ref_errors, show_spec_errors


def run(base: str, head: str | None, fmt: str, style: Callable[..., str]) -> int:
    from mlspec.project import load_project
    from mlspec.repo.compare import against_worktree, between

    if head is None:
        from mlspec.errors import SpecError
        from mlspec.spec.specset import load_specs

        try:
            found = against_worktree(load_specs(), base)
        except SpecError as err:
            return show_spec_errors(err, fmt, style)
    else:
        found = between(load_project(), base, head)
    show_ref_errors(found.diagnostics, found.texts, fmt, style)
    if fmt == "json":
        click.echo(render.render_json(found))
    elif fmt == "markdown":
        click.echo(render.render_markdown(found))
    else:
        click.echo(render.render_text(found, style))
    return EXIT_ERROR if any(d.is_error for d in found.diagnostics) else EXIT_OK
