from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlspec.engine.planner import Planned, PlanOptions
from mlspec.errors import EXIT_CHANGES, EXIT_OK, SpecError
from mlspec.render import plan as render
from mlspec.render.echo import show_ref_errors, show_spec_errors

if TYPE_CHECKING:
    from mlspec.repo.compare import Comparison
    from mlspec.spec.diagnostics import Diagnostic

SPLIT = "\n<!-- mlspec: next comment -->\n"  # between comment bodies when a plan needs several


def run(
    options: PlanOptions,
    fmt: str,
    *,
    out: Path | None,
    detailed_exitcode: bool,
    style: Callable[..., str],
    base: str | None = None,
) -> int:
    from mlspec.engine import session

    try:
        planned = session.plan(options)
    except SpecError as err:
        return show_spec_errors(err, fmt, style)
    plan = planned.plan
    holder = planned.lock
    if holder is not None and fmt == "text":  # JSON carries it as `lock`
        running = "a run that is gone left it" if holder.holder_gone() else "this plan may be out of date when it ends"
        click.echo(style(f"note: the state is locked by {holder.describe()}: {running}", fg="yellow"), err=True)
    branch = None
    if base is not None:
        from mlspec.repo.compare import against_worktree

        branch = against_worktree(planned.specs, base)
        show_ref_errors(branch.diagnostics, branch.texts, fmt, style)  # a broken base does not block the plan
        refused = _authors(planned, branch)
        if refused:
            return show_spec_errors(SpecError(refused), fmt, style)
    if out is not None:
        from mlspec.plan.saved import save

        save(plan, out)
    if fmt == "json":
        data = plan.to_json()
        if holder is not None:
            data["lock"] = {"id": holder.id, "operation": holder.operation, "who": holder.who, "host": holder.host,
                            "pid": holder.pid, "since": holder.created}
        if branch is not None:
            data["base"] = branch.to_json()
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    elif fmt == "markdown":
        from mlspec.render import specdiff

        parts = render.render_markdown(plan, planned.upstream)
        if branch is not None:
            parts[0] = parts[0].replace("\n\n", f"\n\n{specdiff.render_markdown(branch)}\n\n", 1)
        click.echo(SPLIT.join(parts))
    else:
        if branch is not None:
            from mlspec.render import specdiff

            click.echo(specdiff.render_text(branch, style) + "\n")
        click.echo(render.render_text(plan, style))
        if out is not None:
            click.echo(f"\nSaved the plan to {out}. Apply exactly this plan with: mlspec apply {out}")
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


def _authors(planned: Planned, branch: Comparison) -> list[Diagnostic]:
    """The owners policy's `people`, against the branch's author and the CI actor, for what it changes."""
    from mlspec.policy import author_diagnostics, rules
    from mlspec.repo.provenance import collect

    policies = rules(planned.specs.project.setting("policies"))
    if not any(rule.get("people") for rule in policies.get("owners") or ()):
        return []
    found = collect(planned.specs.project.root)
    return author_diagnostics(policies, [(c.address, c.file) for c in branch.changes], [found.author or "", found.who])
