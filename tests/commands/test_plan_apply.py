"""`mlspec plan` and `mlspec apply` as a user meets them: what the plan says, and what apply then does.

Each test builds a small pipeline of Tasks in a temporary spec repo and drives the real command line
in-process (`mlspec.cli.main`), so exit codes and the stdout/stderr split are the ones a user and a
CI script see. Every task runs `step.py` (written into the repo), which appends `NAME` to run.log
each time it runs: that log is how the tests know what apply really ran.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from mlspec.commands.plan import SPLIT
from mlspec.plan.model import Action, Change, Plan, Step
from mlspec.render.plan import COMMENT_LIMIT, render_markdown
from tests.cli import Result

PY = sys.executable

STEP = """\
import os, pathlib, sys

name, *outs = sys.argv[1:]
if pathlib.Path(f"fail-{name}").exists():
    print(f"{name}: cannot go on, fail-{name} exists", file=sys.stderr)
    sys.exit(3)
if os.environ.get("TOKEN_SEEN") and os.environ.get("TOKEN") != os.environ["TOKEN_SEEN"]:
    sys.exit(4)
with open("run.log", "a") as log:
    log.write(name + "\\n")
for out in outs:
    path = pathlib.Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(name)
"""


def task(
    name: str,
    *,
    deps: Iterable[str] = (),
    after: Iterable[str] = (),
    metadata: dict[str, Any] | None = None,
    **spec: Any,
) -> str:
    """A Task spec (JSON is YAML) running step.py; it writes out/NAME.txt and depends on `after`."""
    body: dict[str, Any] = {"cmd": [PY, "step.py", name, f"out/{name}.txt"], "outs": [f"out/{name}.txt"]}
    if deps:
        body["deps"] = list(deps)
    if after:
        body["depends_on"] = [f"Task/{a}" for a in after]
    body.update(spec)
    doc = {"apiVersion": "mlspec/v1", "kind": "Task", "metadata": {"name": name, **(metadata or {})}, "spec": body}
    return json.dumps(doc, indent=2) + "\n"




Mlspec = Callable[..., Result]


@pytest.fixture
def repo(project: Callable[..., Path]) -> Callable[..., Path]:
    """repo({"specs/a.yaml": task("a"), ...}) -> the root, with step.py, data/in.txt and mlspec.yaml."""

    def make(files: dict[str, str], config: str = "specs: ['specs/**/*.yaml']\n") -> Path:
        return project({"step.py": STEP, "data/in.txt": "one\n", **files}, config=config)

    return make



def runs(root: Path) -> list[str]:
    """The tasks that ran, in order."""
    log = root / "run.log"
    return log.read_text().split() if log.exists() else []


def state(mlspec: Mlspec, root: Path) -> dict[str, str]:
    result = mlspec(root, "state", "list", "--format", "json")
    assert result.code == 0, result.output
    return {r["address"]: r["status"] for r in json.loads(result.out)["resources"]}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


CHAIN = {"specs/a.yaml": task("a", deps=["data/in.txt"]), "specs/b.yaml": task("b", deps=["out/a.txt"], after=["a"])}


# --------------------------------------------------------------------------------------------------
# create, converge, detailed exit codes


def test_a_fresh_project_plans_creates_and_apply_converges(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    plan = mlspec(root, "plan")
    assert plan.code == 0, plan.output
    assert "  + Task/a  create" in plan.out and "  + Task/b  create" in plan.out
    assert plan.out.count("because new resource") == 2
    assert "Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in plan.out
    assert mlspec(root, "plan", "--detailed-exitcode").code == 2
    assert not (root / ".mlspec" / "state.db").exists(), "a plan never creates the state"

    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "Apply complete: 2 step(s) done." in applied.out
    assert runs(root) == ["a", "b"]
    assert (root / "out/a.txt").read_text() == "a" and (root / "out/b.txt").read_text() == "b"
    assert state(mlspec, root) == {"Task/a": "applied", "Task/b": "applied"}

    again = mlspec(root, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    assert again.out.startswith("No changes.")
    assert "Plan: 0 to create, 0 to update, 0 to replace, 0 to delete, 2 unchanged." in again.out
    assert mlspec(root, "apply", "-y").code == 0
    assert runs(root) == ["a", "b"], "an apply with nothing to do runs nothing"


# --------------------------------------------------------------------------------------------------
# why a resource changes


def test_an_edited_dep_replaces_the_task_naming_the_file_and_both_digests(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "data/in.txt").write_text("two\n")
    plan = mlspec(root, "plan")
    assert plan.code == 0, plan.output
    assert "-/+ Task/a  replace" in plan.out and "-/+ Task/b  replace" in plan.out
    old, new = sha("one\n")[:8], sha("two\n")[:8]
    cause = f"because inputs changed: data/in.txt changed ({old}… -> {new}…)"
    assert cause in plan.out
    b = plan.out[plan.out.index("Task/b  replace"):]
    assert b.splitlines()[1].strip() == "because Task/a will be replaced"
    assert cause in b, "the chain goes on to the root cause"
    assert "Plan: 0 to create, 0 to update, 2 to replace" in plan.out
    assert "Task/b  replace (conditional: runs only if Task/a publishes something new)" in plan.out

    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0
    # Task/a wrote the same out/a.txt as before: Task/b, planned only because of it, is cut off.
    assert runs(root) == ["a", "b", "a"]
    assert "1 step cut off: Task/a came out unchanged (Task/b kept what they had)" in applied.out
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_an_upstream_that_publishes_something_new_runs_its_conditional_dependents(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo({"specs/a.yaml": task("a", deps=["data/in.txt"], cmd=[PY, "-c", COPY]),
                 "specs/b.yaml": task("b", deps=["out/a.txt"], after=["a"])})
    assert mlspec(root, "apply", "-y").code == 0
    (root / "data/in.txt").write_text("two\n")
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0 and "Apply complete: 2 step(s) done." in applied.out, applied.output
    assert "came out unchanged" not in applied.output
    assert runs(root) == ["b", "b"]
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


COPY = "import pathlib; p = pathlib.Path('out/a.txt'); p.parent.mkdir(exist_ok=True); p.write_text(open('data/in.txt').read())"


def test_descriptive_edits_are_updates_that_run_nothing(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs/a.yaml").write_text(task("a", deps=["data/in.txt"], description="the first step",
                                            metadata={"owner": "ml-team", "labels": {"tier": "gold"}}))
    plan = mlspec(root, "plan")
    assert plan.code == 0, plan.output
    assert "  ~ Task/a  update" in plan.out
    assert "because metadata changed: metadata.labels.tier, metadata.owner, spec.description" in plan.out, plan.out
    assert '+ metadata.owner = "ml-team"' in plan.out and '+ metadata.labels.tier = "gold"' in plan.out
    assert "- metadata.labels" not in plan.out, "labels were added to, not removed"
    assert "Task/b" not in plan.out, "a description does not change what downstream receives"
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete, 1 unchanged." in plan.out

    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert runs(root) == ["a", "b"], "the command did not run again"
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


def test_a_deleted_out_the_store_holds_is_pulled_not_replanned(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    """Deleted here but held by the artifact store: nothing was lost (a fresh clone looks the same), so
    there is no change to plan; `mlspec pull` writes it back."""
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "out/a.txt").unlink()
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0
    pulled = mlspec(root, "pull")
    assert pulled.code == 0 and "Task/a: wrote out/a.txt" in pulled.out, pulled.output
    assert (root / "out/a.txt").read_text() == "a"


def test_a_deleted_out_is_drift(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    """Gone from the repo and from the store: lost, so the Task is replaced."""
    import shutil

    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "out/a.txt").unlink()
    shutil.rmtree(root / ".mlspec" / "artifacts")

    plan = mlspec(root, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "-/+ Task/a  replace" in plan.out and "because drift: out/a.txt deleted" in plan.out

    refresh = mlspec(root, "plan", "--refresh-only")
    assert refresh.code == 0, refresh.output
    assert " <= Task/a  read" in refresh.out and "because drift: out/a.txt deleted" in refresh.out
    assert "Refresh-only plan: 1 to read into state, 1 unchanged." in refresh.out
    assert "-/+" not in refresh.out

    blind = mlspec(root, "plan", "--no-refresh", "--detailed-exitcode")
    assert blind.code == 0, blind.output
    assert blind.out.startswith("No changes.")

    assert mlspec(root, "apply", "-y").code == 0
    assert (root / "out/a.txt").read_text() == "a"
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0


# --------------------------------------------------------------------------------------------------
# resources that left the specs


def test_a_removed_spec_is_orphaned_until_pruned(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo({"specs/a.yaml": task("a"), "specs/b.yaml": task("b")})
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs/b.yaml").unlink()

    plan = mlspec(root, "plan")
    assert plan.code == 0, plan.output
    assert "Orphaned" in plan.out and "\n  Task/b\n" in plan.out
    assert "0 to delete" in plan.out
    assert mlspec(root, "apply", "-y").code == 0
    assert (root / "out/b.txt").exists() and "Task/b" in state(mlspec, root), "not deleted without prune"

    prune = mlspec(root, "plan", "--prune")
    assert prune.code == 0, prune.output
    assert "  - Task/b  delete" in prune.out and "because no longer in the specs, and prune is on" in prune.out
    assert "1 to delete" in prune.out and "Orphaned" not in prune.out
    applied = mlspec(root, "apply", "-y", "--prune")
    assert applied.code == 0, applied.output
    assert not (root / "out/b.txt").exists(), "its outs are removed"
    assert state(mlspec, root) == {"Task/a": "applied"}
    assert (root / "out/a.txt").exists()


def test_prevent_destroy_refuses_to_prune(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo({"specs/a.yaml": task("a"), "specs/b.yaml": task("b", lifecycle={"prevent_destroy": True})})
    assert mlspec(root, "apply", "-y").code == 0
    (root / "specs/b.yaml").unlink()
    assert mlspec(root, "plan").code == 0, "an orphan that is kept is no problem"

    for command in ("plan", "apply"):
        refused = mlspec(root, command, "--prune")
        assert refused.code == 1, refused.output
        assert "prevent_destroy" in refused.err and "Task/b" in refused.err
    assert (root / "out/b.txt").exists() and "Task/b" in state(mlspec, root)


# --------------------------------------------------------------------------------------------------
# --target, --replace


DIAMOND = {
    "specs/a.yaml": task("a"),
    "specs/b.yaml": task("b", after=["a"]),
    "specs/c.yaml": task("c", after=["b"]),
    "specs/e.yaml": task("e"),
}


def test_target_plans_only_the_target_and_its_upstreams(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(DIAMOND)
    plan = mlspec(root, "plan", "--target", "Task/b", "--format", "json")
    assert plan.code == 0, plan.output
    assert [s["address"] for s in json.loads(plan.out)["steps"]] == ["Task/a", "Task/b"]

    applied = mlspec(root, "apply", "-y", "--target", "Task/b")
    assert applied.code == 0, applied.output
    assert sorted(runs(root)) == ["a", "b"]
    assert set(state(mlspec, root)) == {"Task/a", "Task/b"}


def test_replace_forces_a_replace(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(DIAMOND)
    assert mlspec(root, "apply", "-y").code == 0
    plan = mlspec(root, "plan", "--replace", "Task/e", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "-/+ Task/e  replace" in plan.out and "because replacement requested (--replace)" in plan.out
    assert "1 to replace" in plan.out


@pytest.mark.parametrize("flag", ["--target", "--replace"])
def test_an_unknown_address_is_an_error_with_a_suggestion(
    mlspec: Mlspec, repo: Callable[..., Path], flag: str
) -> None:
    root = repo(DIAMOND)
    result = mlspec(root, "plan", flag, "Task/bb")
    assert result.code == 1
    assert f"{flag} Task/bb: no such resource" in result.err
    assert "did you mean `Task/b`?" in result.err


# --------------------------------------------------------------------------------------------------
# saved plans


def test_a_saved_plan_applies_once(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "data/in.txt").write_text("two\n")
    saved = mlspec(root, "plan", "-out", root / "plan.json")
    assert saved.code == 0, saved.output
    assert f"mlspec apply {root / 'plan.json'}" in saved.out

    applied = mlspec(root, "apply", "-y", root / "plan.json")
    assert applied.code == 0, applied.output
    assert runs(root) == ["a", "b", "a"]  # Task/b cut off: Task/a wrote what it wrote before

    again = mlspec(root, "apply", "-y", root / "plan.json")  # carried out already: nothing runs twice
    assert again.code == 0, again.output
    assert "was applied already" in again.out
    assert runs(root) == ["a", "b", "a"]


def test_a_saved_plan_is_refused_when_the_state_moved(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "data/in.txt").write_text("two\n")
    assert mlspec(root, "plan", "-out", root / "plan.json").code == 0
    assert mlspec(root, "apply", "-y", "--target", "Task/a").code == 0  # someone else applied part of it

    refused = mlspec(root, "apply", "-y", root / "plan.json")
    assert refused.code == 1
    assert re.search(r"the state changed since the plan was made \(serial \d+ -> \d+\): make a new plan",
                     refused.err), refused.err
    assert runs(root) == ["a", "b", "a"]


def test_a_saved_plan_applies_on_a_fresh_project(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    """`plan -out` before anything was applied, then `apply` of it: Terraform's first run."""
    root = repo(CHAIN)
    assert mlspec(root, "plan", "-out", root / "plan.json").code == 0
    applied = mlspec(root, "apply", "-y", root / "plan.json")
    assert applied.code == 0, applied.output
    assert runs(root) == ["a", "b"]


def test_a_saved_plan_is_refused_after_a_spec_edit(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "data/in.txt").write_text("two\n")
    assert mlspec(root, "plan", "-out", root / "plan.json").code == 0
    (root / "specs/b.yaml").write_text(task("b", deps=["out/a.txt"], after=["a"], params={"seed": 7}))

    refused = mlspec(root, "apply", "-y", root / "plan.json")
    assert refused.code == 1
    assert "changed since the plan was made" in refused.err and "Task/b" in refused.err
    assert "Task/a" not in refused.err, "only what moved is named"
    assert runs(root) == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json {", "is not a saved mlspec plan (not JSON"),
        ('{"hello": "world"}', "is not a saved mlspec plan"),
        ('{"format_version": "2", "lineage": "x", "steps": [{"address": 1}]}', "damaged mlspec plan"),
        ('{"format_version": "1", "lineage": "x", "steps": []}', "plan format '1' is not '2': make the plan again"),
        ("", "is not a saved mlspec plan"),
    ],
)
def test_a_file_that_is_not_a_plan_is_refused_clearly(
    mlspec: Mlspec, repo: Callable[..., Path], content: str, message: str
) -> None:
    root = repo(CHAIN)
    (root / "plan.json").write_text(content)
    result = mlspec(root, "apply", "-y", root / "plan.json")
    assert result.code == 1
    assert message in result.err, result.err
    assert runs(root) == []


# --------------------------------------------------------------------------------------------------
# formats, and secrets


def test_json_plan(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    data = json.loads(mlspec(root, "plan", "--format", "json").out)
    assert data["format_version"] == "2"
    assert data["summary"] == {"create": 2, "update": 0, "replace": 0, "delete": 0, "read": 0, "noop": 0}
    assert data["has_changes"] is True
    a, b = data["steps"]
    assert (a["address"], a["action"], a["causes"]) == ("Task/a", "create", ["new resource"])
    assert {"path": "spec.outs", "before": None, "after": ["out/a.txt"]} in a["changes"]
    assert b["address"] == "Task/b" and len(b["fingerprint"]) == 64


SECRET = "hunter2-do-not-print-me"


def test_secrets_never_reach_a_plan_or_the_state(
    mlspec: Mlspec, repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLSPEC_TEST_SECRET", SECRET)
    monkeypatch.setenv("TOKEN_SEEN", SECRET)  # step.py fails unless TOKEN is the secret
    root = repo({"specs/a.yaml": task("a", env={"TOKEN": "${env:MLSPEC_TEST_SECRET}"})})
    shown = []
    for fmt in ("text", "json", "markdown"):
        result = mlspec(root, "plan", "--format", fmt, "-out", root / f"plan-{fmt}.json")
        assert result.code == 0, result.output
        shown += [result.output, (root / f"plan-{fmt}.json").read_text()]
        assert "(sensitive)" in result.out, fmt
    assert not [text for text in shown if SECRET in text]
    assert '+ spec.env.TOKEN = "(sensitive)"' in shown[0]

    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert runs(root) == ["a"], "the command got the secret"
    assert SECRET not in applied.output
    stored = [p for p in (root / ".mlspec").iterdir() if p.name.startswith("state.db")]
    assert stored and not [p for p in stored if SECRET.encode() in p.read_bytes()]
    shown_state = mlspec(root, "state", "show", "Task/a", "--format", "json")
    assert SECRET not in shown_state.out and "${env:MLSPEC_TEST_SECRET}" in shown_state.out


def test_markdown_plan(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo({**CHAIN, "specs/e.yaml": task("e")})
    assert mlspec(root, "apply", "-y", "--target", "Task/e").code == 0
    result = mlspec(root, "plan", "--format", "markdown")
    assert result.code == 0, result.output
    body = result.out
    assert body.startswith(  # the summary, then a table of what changes and why
        "### mlspec plan\n\n**Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 1 unchanged.")
    assert "| | Resource | Action | Why | Estimate |" in body
    assert "| 🟢 | `Task/a` | create | new resource |" in body
    assert body.count("<details>") == 2 and body.count("</details>") == 2, "one per changing resource"
    assert "<summary><code>+ Task/b</code> create</summary>" in body
    assert "```mermaid" in body and "n0 --> n1" in body
    assert SPLIT not in body


def test_a_huge_markdown_plan_is_split_into_comments_that_each_stand_alone() -> None:
    cause = "inputs changed: " + ", ".join(f"data/shard-{i:04d}.parquet changed (0123abcd… -> 4567ef01…)"
                                           for i in range(6))
    steps = tuple(
        Step(f"Task/step-{i:04d}", Action.REPLACE, (cause, f"Task/step-{i - 1:04d} will be replaced"),
             (Change("spec.params.seed", i, i + 1),), fingerprint="f" * 64)
        for i in range(3_000)
    )
    parts = render_markdown(Plan("lineage", 7, steps), {s.address: () for s in steps})
    assert len(parts) > 1
    total = len(parts)
    for i, part in enumerate(parts, 1):
        assert len(part) < COMMENT_LIMIT, f"part {i} has {len(part)} characters"
        assert part.startswith("### mlspec plan\n\n**Plan: 0 to create, 0 to update, 3000 to replace")
        assert f"(part {i} of {total})" in part.splitlines()[2]
        assert part.count("<details>") == part.count("</details>"), f"part {i} leaves a <details> open"
    shown = "".join(parts)
    assert all(f"<code>-/+ Task/step-{i:04d}</code>" in shown for i in (0, 1_500, 2_999)), "no step is lost"


# --------------------------------------------------------------------------------------------------
# what is not planned, and errors


def test_invalid_specs_stop_the_plan_with_positions(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    bad = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: a}\nspec:\n  cmd: [echo]\n  outz: [x]\n"
    root = repo({"specs/a.yaml": bad, "specs/b.yaml": task("b")})
    for command in ("plan", "apply"):
        result = mlspec(root, command)
        assert result.code == 1, result.output
        assert "specs/a.yaml:6:3: error[" in result.err and "`outz`" in result.err
    assert runs(root) == [] and state(mlspec, root) == {}


def test_kinds_without_a_plugin_are_not_planned(mlspec: Mlspec, repo: Callable[..., Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import mlspec.discovery as discovery

    installed = discovery.entry_points
    monkeypatch.setattr(discovery, "entry_points",  # an install without the Prompt plugin
                        lambda **kw: [p for p in installed(**kw) if p.name != "Prompt"])
    prompt = ("apiVersion: mlspec/v1\nkind: Prompt\nmetadata: {name: triage}\n"
              "spec:\n  template: 'Classify {{ review }}'\n  variables: {review: {type: string}}\n")
    root = repo({"specs/a.yaml": task("a"), "specs/prompt.yaml": prompt})
    plan = mlspec(root, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "Not planned" in plan.out and "no installed plugin manages kind Prompt: Prompt/triage" in plan.out
    assert "Plan: 1 to create" in plan.out
    data = json.loads(mlspec(root, "plan", "--format", "json").out)
    assert data["unmanaged"] == [{"address": "Prompt/triage", "why": "no installed plugin manages kind Prompt"}]
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert state(mlspec, root) == {"Task/a": "applied"}


def test_a_failing_command_fails_the_apply_and_says_why(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo({**CHAIN, "specs/e.yaml": task("e"), "fail-a": ""})
    result = mlspec(root, "apply", "-y")
    assert result.code == 1
    assert "failed: Task/a" in result.out
    assert "exit code 3" in result.out and "a: cannot go on, fail-a exists" in result.out
    assert "Apply failed: 1 done, 1 failed, 1 skipped." in result.out
    assert "Task/b: skipped (upstream Task/a failed)" in result.err
    assert state(mlspec, root) == {"Task/a": "tainted", "Task/e": "applied"}

    plan = mlspec(root, "plan")
    assert "because tainted: its last apply failed" in plan.out
    (root / "fail-a").unlink()
    assert mlspec(root, "apply", "-y").code == 0
    assert runs(root) == ["e", "a", "b"]


def test_pruned_resources_are_deleted_dependents_first(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    """The specs are gone, so the order comes from the references state recorded: c <- b <- a."""
    root = repo({"specs/a.yaml": task("a", after=["b"]), "specs/b.yaml": task("b", after=["c"]),
                 "specs/c.yaml": task("c"), "specs/z.yaml": task("z")})
    assert mlspec(root, "apply", "-y").code == 0
    for name in "abc":
        (root / "specs" / f"{name}.yaml").unlink()
    steps = mlspec(root, "plan", "--prune", "--format", "json").json()["steps"]
    assert [s["address"] for s in steps if s["action"] == "delete"] == ["Task/a", "Task/b", "Task/c"]


def test_apply_with_no_terminal_and_no_y_refuses_and_changes_nothing(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    """Terraform's rule: an apply that cannot ask does not act; a reviewed, saved plan needs no question."""
    root = repo(CHAIN)
    refused = mlspec(root, "apply")
    assert refused.code == 1 and "pass -y (--auto-approve)" in refused.err, refused.output
    assert runs(root) == [] and not (root / "out").exists()
    assert mlspec(root, "plan", "-out", root / "plan.json").code == 0
    applied = mlspec(root, "apply", root / "plan.json")
    assert applied.code == 0, applied.output
    assert runs(root) == ["a", "b"]


@pytest.mark.parametrize(("given", "seconds"), [("0", 0.0), ("2.5", 2.5), ("5s", 5.0), ("2m", 120.0), ("1h30m", 5400.0)])
def test_lock_timeouts_take_units(mlspec: Mlspec, repo: Callable[..., Path], given: str, seconds: float) -> None:
    from mlspec.duration import parse

    assert parse(given) == seconds
    assert mlspec(repo(CHAIN), "apply", "-y", "--lock-timeout", given).code == 0


def test_a_lock_timeout_that_is_not_a_duration_is_refused(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    refused = mlspec(repo(CHAIN), "apply", "-y", "--lock-timeout", "soon")
    assert refused.code == 1 and "`soon` is not a duration" in refused.err, refused.output


def test_state_mv_keeps_the_kind(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    refused = mlspec(root, "state", "mv", "Task/a", "Model/b")
    assert refused.code == 1 and "a move keeps the kind" in refused.err, refused.output
    assert mlspec(root, "state", "mv", "Task/a", "Task/renamed").code == 0


def test_a_plan_made_during_an_apply_says_so(mlspec: Mlspec, repo: Callable[..., Path]) -> None:
    from mlspec.state.local import LocalStateStore

    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    store = LocalStateStore(root / ".mlspec" / "state.db")
    try:
        with store.lock("apply") as held:
            plan = mlspec(root, "plan")
            assert plan.code == 0 and f"note: the state is locked by {held.id} (apply by" in plan.err, plan.output
            assert mlspec(root, "plan", "--format", "json").json()["lock"]["id"] == held.id
    finally:
        store.close()
    assert "locked" not in mlspec(root, "plan").err



def test_a_fresh_clone_on_shared_backends_is_not_drift_and_restores_what_a_step_needs(
    mlspec: Mlspec, project: Callable[..., Path], tmp_path: Path
) -> None:
    """Two checkouts sharing one state and one artifact store (a CI runner's fresh clone): the clone
    plans No changes though the Tasks' outs are not there, and a step that runs gets the outs it reads
    written back first."""
    shared = tmp_path / "shared"
    config = (f"specs: ['specs/**/*.yaml']\nstate: {{path: '{shared}/state.db'}}\n"
              f"artifacts: {{url: '{shared}/artifacts'}}\n")
    files = {"step.py": STEP, "data/in.txt": "one\n", **CHAIN}
    first = project(files, config=config)
    assert mlspec(first, "apply", "-y").code == 0
    clone = tmp_path / "clone"
    clone.mkdir()
    for rel, text in {**files, "mlspec.yaml": config}.items():
        (clone / rel).parent.mkdir(parents=True, exist_ok=True)
        (clone / rel).write_text(text)
    assert not (clone / "out").exists()
    assert mlspec(clone, "plan", "--detailed-exitcode").code == 0  # not drift: the store holds them
    (clone / "specs/b.yaml").write_text(task("b", deps=["out/a.txt"], after=["a"], params={"n": 2}))
    applied = mlspec(clone, "apply", "-y")
    assert applied.code == 0, applied.output
    assert (clone / "out/a.txt").read_text() == "a"  # written back for Task/b, which reads it; Task/a did not run
    assert runs(clone) == ["b"]


def test_artifacts_gc_finds_what_nothing_refers_to_and_deletes_it_when_asked(
    mlspec: Mlspec, repo: Callable[..., Path]
) -> None:
    root = repo(CHAIN)
    assert mlspec(root, "apply", "-y").code == 0
    (root / "data/in.txt").write_text("two\n")
    (root / "specs/a.yaml").write_text(task("a", deps=["data/in.txt"], params={"v": 2}))
    assert mlspec(root, "apply", "-y").code == 0  # a's old run cache index is no longer referenced
    dry = mlspec(root, "artifacts", "gc", "--format", "json").json()
    assert dry["unreferenced"] >= 1 and not dry["deleted"], dry
    assert all(key.startswith(("runs/", "sha256/")) for key in dry["keys"])
    gone = mlspec(root, "artifacts", "gc", "--delete")
    assert gone.code == 0 and "deleted" in gone.out, gone.output
    assert mlspec(root, "artifacts", "gc", "--format", "json").json()["unreferenced"] == 0
    (root / "out/a.txt").unlink()
    assert mlspec(root, "plan", "--detailed-exitcode").code == 0  # what state refers to was kept
    assert mlspec(root, "pull").code == 0 and (root / "out/a.txt").read_text() == "a"
