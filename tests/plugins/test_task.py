"""The built-in Task plugin, running real commands in a temporary spec repo."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mlspec_task import TaskFailed, TaskPlugin

from mlspec.digests import FileDigests
from mlspec.discovery import Registry
from mlspec.sdk import PlanContext, Runtime, StepRequest
from mlspec.spec.specset import Resource, load_specs
from mlspec.state import ResourceState

PY = sys.executable


def task(spec: str) -> str:
    return f"apiVersion: mlspec/v1\nkind: Task\nmetadata: {{name: t}}\nspec:\n{spec}"


@pytest.fixture
def make(project: Callable[..., Path]) -> Callable[[str], tuple[Path, Resource]]:
    def build(spec: str, files: dict[str, str] | None = None) -> tuple[Path, Resource]:
        root = project({"specs/t.yaml": task(spec), **(files or {})})
        return root, load_specs(root).resources["Task/t"]

    return build  # type: ignore[return-value]


def step(root: Path, resource: Resource, fingerprint: str = "", previous: ResourceState | None = None) -> StepRequest:
    return StepRequest(resource, {}, previous, root, "", fingerprint=fingerprint)


QUIET = Runtime(log=lambda _: None)


WRITE = f"  cmd: [{PY}, -c, \"import pathlib; pathlib.Path('out.txt').write_text('hi'); open('runs.log','a').write('x')\"]\n  outs: [out.txt]\n"


def test_the_builtin_plugin_is_registered_like_any_other() -> None:
    assert isinstance(Registry().for_kind("Task"), TaskPlugin)


def test_apply_runs_the_command_and_records_its_outs(make: Callable[..., tuple[Path, Resource]]) -> None:
    root, resource = make(WRITE)
    outputs = TaskPlugin().apply(step(root, resource), QUIET).outputs
    assert (root / "out.txt").read_text() == "hi"
    assert outputs["outs"] == {"out.txt": "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4"}
    assert outputs["cached"] is False


def test_the_run_cache_restores_outs_instead_of_running_again(make: Callable[..., tuple[Path, Resource]]) -> None:
    root, resource = make(WRITE)
    plugin = TaskPlugin()
    plugin.apply(step(root, resource, fingerprint="f" * 64), QUIET)
    (root / "out.txt").unlink()
    outputs = plugin.apply(step(root, resource, fingerprint="f" * 64), QUIET).outputs
    assert outputs["cached"] is True and (root / "out.txt").read_text() == "hi"
    assert (root / "runs.log").read_text() == "x"  # the command ran once
    plugin.apply(step(root, resource, fingerprint="e" * 64), QUIET)  # another fingerprint runs it
    assert (root / "runs.log").read_text() == "xx"


def test_argv_is_never_given_to_a_shell(make: Callable[..., tuple[Path, Resource]]) -> None:
    root, resource = make(f"  cmd: [{PY}, -c, \"import sys, pathlib; pathlib.Path('out.txt').write_text(sys.argv[1])\", '$(echo no); rm -rf x']\n  outs: [out.txt]\n")
    TaskPlugin().apply(step(root, resource), QUIET)
    assert (root / "out.txt").read_text() == "$(echo no); rm -rf x"


def test_env_references_are_resolved_at_apply_only(
    make: Callable[..., tuple[Path, Resource]], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = f"  cmd: [{PY}, -c, \"import os, pathlib; pathlib.Path('out.txt').write_text(os.environ['TOKEN'])\"]\n  outs: [out.txt]\n  env: {{TOKEN: '${{env:MLSPEC_TEST_TOKEN}}'}}\n"
    root, resource = make(spec)
    assert resource.spec_data()["env"] == {"TOKEN": "${env:MLSPEC_TEST_TOKEN}"}  # symbolic in the spec set
    with pytest.raises(TaskFailed, match="MLSPEC_TEST_TOKEN is not set"):
        TaskPlugin().apply(step(root, resource), QUIET)
    monkeypatch.setenv("MLSPEC_TEST_TOKEN", "s3cret")
    outputs = TaskPlugin().apply(step(root, resource), QUIET).outputs
    assert (root / "out.txt").read_text() == "s3cret" and "s3cret" not in str(outputs)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"  cmd: [{PY}, -c, \"import sys; print('bad input', file=sys.stderr); sys.exit(3)\"]\n", "exit code 3\nbad input"),
        ("  cmd: [no-such-command-anywhere]\n", "command not found: no-such-command-anywhere"),
        (f"  cmd: [{PY}, -c, 'import time; time.sleep(5)']\n  timeout_s: 0.3\n", "timed out after 0.3s"),
        (f"  cmd: [{PY}, -c, 'pass']\n  outs: [never.txt]\n", "did not write `never.txt`"),
    ],
)
def test_failures_say_why(make: Callable[..., tuple[Path, Resource]], spec: str, message: str) -> None:
    root, resource = make(spec)
    with pytest.raises(TaskFailed, match=message.replace("(", r"\(")):
        TaskPlugin().apply(step(root, resource), QUIET)


def test_inputs_are_the_deps_digests(make: Callable[..., tuple[Path, Resource]]) -> None:
    root, resource = make("  cmd: [x]\n  deps: ['data/*.csv', scripts]\n",
                          {"data/a.csv": "1", "data/b.csv": "2", "scripts/run.py": "print()"})
    plugin = TaskPlugin()
    with FileDigests(None) as digests:
        first = plugin.inputs(resource, PlanContext(root, digests))
        assert sorted(first) == ["data/a.csv", "data/b.csv", "scripts/run.py"]
        (root / "data" / "b.csv").write_text("changed")
        assert plugin.inputs(resource, PlanContext(root, digests))["data/b.csv"] != first["data/b.csv"]


def test_refresh_sees_deleted_or_edited_outs_and_destroy_removes_them(
    make: Callable[..., tuple[Path, Resource]]
) -> None:
    root, resource = make(WRITE)
    plugin = TaskPlugin()
    state = ResourceState("Task/t", "fp", {}, dict(plugin.apply(step(root, resource), QUIET).outputs))
    context = PlanContext(root, FileDigests(None))
    assert plugin.refresh(resource, state, context).drift is None
    (root / "out.txt").write_text("edited")
    assert plugin.refresh(resource, state, context).drift == "out.txt modified"
    plugin.destroy(step(root, resource, previous=state), QUIET)
    assert not (root / "out.txt").exists()
    # Held by the artifact store, an absent out is not lost: a fresh clone is not drift ...
    observed = plugin.refresh(resource, state, context)
    assert observed.exists and observed.drift is None
    assert TaskPlugin().materialize(state.outputs, root, "") == ["out.txt"]  # ... and `mlspec pull` writes it back
    assert (root / "out.txt").read_text() == "hi"
    (root / "out.txt").unlink()
    # ... but one the store does not hold is.
    bare = ResourceState("Task/t", "fp", {}, {k: v for k, v in state.outputs.items() if k != "stored"})
    observed = plugin.refresh(resource, bare, context)
    assert not observed.exists and observed.drift == "out.txt deleted"


def test_a_secret_the_command_prints_never_reaches_the_log(
    make: Callable[..., tuple[Path, Resource]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSPEC_TEST_TOKEN", "hunter22")
    spec = (f"  cmd: [{PY}, -c, \"import os, sys; print('token', os.environ['T']); sys.exit(os.environ['T'])\"]\n"
            "  env: {T: '${env:MLSPEC_TEST_TOKEN}'}\n")
    root, resource = make(spec)
    logged: list[str] = []
    with pytest.raises(TaskFailed) as err:
        TaskPlugin().apply(StepRequest(resource, {}, None, root, ""), Runtime(log=logged.append))
    assert logged == ["Task/t: token (sensitive)"]
    assert "hunter22" not in str(err.value) and "(sensitive)" in str(err.value)


def test_upstream_outputs_reach_the_command_as_environment(project: Callable[..., Path]) -> None:
    producer = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: prep}\nspec: {cmd: [x]}\n"
    consumer = task(f"  cmd: [{PY}, -c, \"import os, pathlib; pathlib.Path('got.txt').write_text("
                    f"os.environ['MLSPEC_INPUT_PREP_OUTS'])\"]\n  deps: [{{ref: Task/prep, output: outs}}]\n")
    root = project({"specs/prep.yaml": producer, "specs/t.yaml": consumer})
    resource = load_specs(root).resources["Task/t"]
    upstream = {"Task/prep": {"outs": {"a.txt": "abc"}}}
    TaskPlugin().apply(StepRequest(resource, upstream, None, root, ""), QUIET)
    assert (root / "got.txt").read_text() == '{"a.txt": "abc"}'
    with pytest.raises(TaskFailed, match=r"Task/prep has no output `outs` \(its outputs: seconds\)"):
        TaskPlugin().apply(StepRequest(resource, {"Task/prep": {"seconds": 1}}, None, root, ""), QUIET)


def test_a_secret_inside_a_composed_value_is_masked_alone(
    make: Callable[..., tuple[Path, Resource]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`postgres://app:${env:PW}@db/prod`: a command that prints only the password is masked too."""
    monkeypatch.setenv("MLSPEC_TEST_PW", "hunter2 s3cret")
    spec = (f"  cmd: [{PY}, -c, \"import os, urllib.parse as u; p = os.environ['URL'].split(':')[2].split('@')[0]; "
            "print('password', u.unquote(p), p)\"]\n"
            "  env: {URL: 'postgres://app:${env:MLSPEC_TEST_PW}@db/prod'}\n")
    root, resource = make(spec)
    logged: list[str] = []
    TaskPlugin().apply(StepRequest(resource, {}, None, root, ""), Runtime(log=logged.append))
    assert logged == ["Task/t: password (sensitive) (sensitive)"]
