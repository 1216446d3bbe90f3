"""The library engine: plan and apply from Python with the CLI's guarantees, and a step run in another
process from its serialised request alone."""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from mlspec.audit.log import AuditLog
from mlspec.engine import session
from mlspec.engine.planner import PlanOptions
from mlspec.engine.reporter import QuietReporter
from mlspec.errors import SpecError, StateLockedError
from mlspec.state.local import LocalStateStore

PY = sys.executable
PPID = "import os, pathlib; p = pathlib.Path('out/ppid.txt'); p.parent.mkdir(exist_ok=True); p.write_text(str(os.getppid()))"


def task(name: str, code: str, outs: str, after: str | None = None) -> str:
    depends = f"  depends_on: [Task/{after}]\n" if after else ""
    return (f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: {name}}}\nspec:\n"
            f"  cmd: [{PY}, -c, \"{code}\"]\n  outs: [{outs}]\n{depends}")


@pytest.fixture
def root(project: Callable[..., Path]) -> Path:
    return project({"specs/a.yaml": task("a", PPID, "out/ppid.txt")}, config="specs: ['specs/**/*.yaml']\n")


def test_a_python_caller_gets_the_lock_the_audit_and_the_provenance(root: Path) -> None:
    planned = session.plan(root=root)
    assert [s.address for s in planned.plan.steps] == ["Task/a"] and planned.plan.has_changes
    assert not (root / ".mlspec" / "state.db").exists()  # planning creates no state

    reporter = QuietReporter()
    outcome = session.apply(root=root, reporter=reporter)
    assert outcome.result.ok and outcome.result.done == ["Task/a"] and outcome.exit_code == 0
    assert ("done", "Task/a", "") in reporter.events
    events = [e["event"] for e in AuditLog(root).entries()]
    assert events == ["apply.started", "apply.finished"]
    store = LocalStateStore(root / ".mlspec" / "state.db")
    try:
        assert store.note("last_apply")["ok"] is True and store.audit_head()["seq"] == 2  # type: ignore[index]
        assert store.get("Task/a") is not None
    finally:
        store.close()
    assert not session.plan(root=root).plan.has_changes


def test_a_held_lock_refuses_a_library_apply_as_it_refuses_the_cli(root: Path) -> None:
    session.apply(root=root)
    store = LocalStateStore(root / ".mlspec" / "state.db")
    try:
        with store.lock("apply"), pytest.raises(StateLockedError, match="the state is locked"):
            session.apply(PlanOptions(replace=("Task/a",)), root=root)
    finally:
        store.close()


def test_invalid_specs_raise_with_every_diagnostic(project: Callable[..., Path]) -> None:
    broken = project({"specs/a.yaml": "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: a}\nspec: {cmdd: [x]}\n"},
                     config="specs: ['specs/**/*.yaml']\n")
    with pytest.raises(SpecError) as err:
        session.apply(root=broken)
    assert any("cmdd" in d.message for d in err.value.diagnostics)


def test_a_declined_review_changes_nothing(root: Path) -> None:
    outcome = session.apply(root=root, review=lambda plan: False)
    assert outcome.declined and not outcome.changes and not (root / "out").exists()


def test_steps_run_in_another_process_from_their_request_alone(root: Path) -> None:
    """A process pool started with `spawn` shares nothing with this process: the step runs from the
    JSON of its request, the plugin loaded there from the entry points; state is committed here."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        outcome = session.apply(root=root, runner=pool)
    assert outcome.result.ok, outcome.result.failed
    worker = int((root / "out" / "ppid.txt").read_text())
    assert worker != os.getpid()  # the command's parent was the worker process, not this one
    assert not session.plan(root=root).plan.has_changes


def test_a_request_round_trips_json_with_its_nulls(project: Callable[..., Path]) -> None:
    """`splits: {validation: null}` must come back null in another process, not as its default."""
    from mlspec.sdk import StepRequest
    from mlspec.spec.specset import load_specs

    model = ("apiVersion: mlspec/v1\nkind: Dataset\nmetadata: {name: d}\nspec:\n  source: {path: d.csv, format: csv}\n"
             "  splits: {ratios: {train: 0.5, test: 0.5}}\n")
    root = project({"specs/d.yaml": model, "d.csv": "a\n1\n"}, config="specs: ['specs/**/*.yaml']\n")
    resource = load_specs(root).resources["Dataset/d"]
    request = StepRequest(resource, {"Task/t": {"outs": {}}}, None, root, ".mlspec/artifacts", "f" * 64,
                          registry={"versions": []})
    back = StepRequest.from_json(request.to_json())
    assert back.resource.envelope == resource.envelope and back.to_json() == request.to_json()
