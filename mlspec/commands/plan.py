from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlspec.engine.planner import Planned, PlanOptions, digests_for, make_plan
from mlspec.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, MlspecError, SpecError, StateMissingError
from mlspec.plan.model import Plan
from mlspec.render import plan as render
from mlspec.state.base import StateReader, StateStore

if TYPE_CHECKING:
    from mlspec.repo.compare import Comparison
    from mlspec.spec.diagnostics import Diagnostic


def prepare(store: StateReader, options: PlanOptions, progress: Callable[[str], None] | None = None) -> Planned:
    """Specs (validated), plugins, observations, plan: what `plan` shows and `apply` carries out."""
    from mlspec.plugin import Registry
    from mlspec.spec.specset import load_specs

    paused = gc.isenabled()
    gc.disable()  # planning allocates many small, long-lived objects and frees none: collections are pure cost
    try:
        specs = load_specs()
        registry = Registry(prefer=specs.project.setting("plugin_for"))
        with digests_for(specs.project.root) as digests:
            return make_plan(specs, store, registry, digests, options, on_progress=progress)
    finally:
        if paused:
            gc.enable()


@contextmanager
def reading_state() -> Iterator[StateReader]:
    """The state to plan against; before the first apply, an empty one (nothing is created by a plan)."""
    from mlspec.project import load_project
    from mlspec.state import open_state
    from mlspec.state.memory import MemoryStateStore

    store: StateStore
    try:
        store = open_state(load_project(), create=False)
    except StateMissingError:
        store = MemoryStateStore(lineage=NO_STATE)
    try:
        yield store
    finally:
        store.close()


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


def run(
    options: PlanOptions,
    fmt: str,
    *,
    out: Path | None,
    detailed_exitcode: bool,
    style: Callable[..., str],
    base: str | None = None,
) -> int:
    try:
        with reading_state() as store:
            planned = prepare(store, options)
    except SpecError as err:
        return show_spec_errors(err, fmt, style)
    plan = planned.plan
    branch = None
    if base is not None:
        from mlspec.commands.diff import show_ref_errors
        from mlspec.repo.compare import against_worktree

        branch = against_worktree(planned.specs, base)
        show_ref_errors(branch.diagnostics, branch.texts, fmt, style)  # a broken base does not block the plan
        refused = _authors(planned, branch)
        if refused:
            return show_spec_errors(SpecError(refused), fmt, style)
    if out is not None:
        save(plan, out)
    if fmt == "json":
        data = plan.to_json()
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


SPLIT = "\n<!-- mlspec: next comment -->\n"  # between comment bodies when a plan needs several
NO_STATE = ""  # the lineage of a plan made before the first apply: the first state accepts it


def save(plan: Plan, path: Path) -> None:
    """Atomically: a half-written plan file must never be applied."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(plan.to_json(), indent=1, ensure_ascii=False, default=str))
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise MlspecError(f"cannot write the plan to {path}: {err.strerror}") from err


def load_saved(path: Path) -> Plan:
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise MlspecError(f"cannot read the plan {path}: {err.strerror}") from err
    except ValueError as err:
        raise MlspecError(f"{path} is not a saved mlspec plan (not JSON: {err})") from err
    if not isinstance(data, dict) or "steps" not in data or "lineage" not in data:
        raise MlspecError(f"{path} is not a saved mlspec plan (make one with `mlspec plan -out {path}`)")
    try:
        return Plan.from_json(data)
    except (KeyError, TypeError, ValueError) as err:
        raise MlspecError(f"{path} is a damaged mlspec plan ({type(err).__name__}: {err}); make a new one") from err
