"""`mlspec diff REF1 [REF2]` and `mlspec plan --base REF`: what a branch changes in the specs.

Every test builds a real git repository in a temporary directory with the git CLI (branches, commits,
detached heads, orphan branches, shallow clones) and drives the command line in-process, so exit
codes and the stdout/stderr split are what a reviewer and a CI job see. Specs at a ref are read from
git objects: the tests also check that nothing is checked out and the work tree is left alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec.repo.compare import against_worktree
from mlspec.spec.specset import load_specs
from tests.cli import Result
from tests.repo.gitrepo import Repo, git, make_repo, task

Mlspec = Callable[..., Result]

BASE = {"specs/a.yaml": task("a"), "specs/b.yaml": task("b"), "specs/c.yaml": task("c")}
# What the feature branch does to BASE: edit a field of a, remove c, add d.
FEATURE = {"specs/a.yaml": task("a", params={"lr": 0.2}), "specs/d.yaml": task("d")}

CHANGED = ("  ~ Task/a  changed  (specs/a.yaml)", "      ~ spec.params.lr: 0.1 -> 0.2",
           "  - Task/c  removed  (specs/c.yaml)", "  + Task/d  added  (specs/d.yaml)")




@pytest.fixture
def branched(tmp_path: Path) -> Repo:
    """main holds BASE; feature (checked out) edits a, removes c and adds d, in one commit."""
    repo = make_repo(tmp_path / "repo", BASE)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit(FEATURE, remove=("specs/c.yaml",), message="feature")
    return repo


def lines_of(result: Result) -> list[str]:
    return result.out.splitlines()


# --------------------------------------------------------------------------------------------------
# what a branch changes, in three formats


def test_diff_lists_what_the_branch_adds_removes_and_edits(mlspec: Mlspec, branched: Repo) -> None:
    for args in (("main",), ("main", "feature")):
        result = mlspec(branched.root, "diff", *args)
        assert result.code == 0, result.output
        assert "1 added, 1 changed, 1 removed." in lines_of(result)[0], result.out
        assert lines_of(result)[1:] == list(CHANGED), result.out
        assert "Task/b" not in result.out, "an untouched resource is not listed"
    main_sha = branched.git("rev-parse", "main").strip()
    result = mlspec(branched.root, "diff", "main", "feature")
    assert result.out.startswith(f"Spec changes from main ({main_sha[:8]}) to feature ({branched.head()[:8]})")


def test_diff_as_json_names_both_commits_and_every_change(mlspec: Mlspec, branched: Repo) -> None:
    main_sha, feature_sha = branched.git("rev-parse", "main").strip(), branched.head()
    data = mlspec(branched.root, "diff", "main", "feature", "--format", "json").json()
    assert data["format_version"] == "1"
    assert (data["base"], data["base_commit"]) == ("main", main_sha)
    assert (data["head"], data["head_commit"]) == ("feature", feature_sha)
    assert data["related"] is True and data["diagnostics"] == []
    changes = {c["address"]: c for c in data["changes"]}
    assert {a: c["status"] for a, c in changes.items()} == {"Task/a": "changed", "Task/c": "removed",
                                                           "Task/d": "added"}
    assert changes["Task/a"]["changes"] == [{"path": "spec.params.lr", "before": 0.1, "after": 0.2}]
    assert changes["Task/a"]["file"] == "specs/a.yaml"
    assert {"path": "metadata.owner", "before": None, "after": "team-x"} in changes["Task/d"]["changes"]

    worktree = mlspec(branched.root, "diff", "main", "--format", "json").json()
    assert (worktree["head"], worktree["head_commit"]) == ("working tree", feature_sha)
    assert worktree["changes"] == data["changes"]


def test_diff_as_markdown_is_a_table(mlspec: Mlspec, branched: Repo) -> None:
    result = mlspec(branched.root, "diff", "main", "feature", "--format", "markdown")
    assert result.code == 0, result.output
    assert result.out.startswith("**Spec changes from main (")
    assert "| | Resource | Change | Fields |\n|---|---|---|---|\n" in result.out
    assert "| ~ | `Task/a` | changed | `spec.params.lr` |" in result.out
    assert "| - | `Task/c` | removed |" in result.out and "| + | `Task/d` | added |" in result.out


def test_uncommitted_and_untracked_edits_count_against_the_work_tree_only(mlspec: Mlspec, branched: Repo) -> None:
    branched.write({"specs/b.yaml": task("b", params={"lr": 0.5}), "specs/e.yaml": task("e")})  # e is untracked
    branched.remove("specs/d.yaml")  # deleted, not committed
    worktree = mlspec(branched.root, "diff", "main")
    assert worktree.code == 0, worktree.output
    assert "      ~ spec.params.lr: 0.1 -> 0.5" in worktree.out and "  ~ Task/b  changed" in worktree.out
    assert "  + Task/e  added  (specs/e.yaml)" in worktree.out
    assert "Task/d" not in worktree.out, "d is on neither main nor the work tree"
    assert "1 added, 2 changed, 1 removed." in worktree.out

    committed = mlspec(branched.root, "diff", "main", "feature")
    assert lines_of(committed)[1:] == list(CHANGED), "refs alone: no uncommitted edit"

    since_head = mlspec(branched.root, "diff", "HEAD")
    assert "1 added, 1 changed, 1 removed." in since_head.out, since_head.out
    assert "  - Task/d  removed" in since_head.out


# --------------------------------------------------------------------------------------------------
# plan --base: the spec changes beside the plan


def test_plan_base_shows_the_spec_changes_and_the_plan(mlspec: Mlspec, branched: Repo) -> None:
    text = mlspec(branched.root, "plan", "--base", "main")
    assert text.code == 0, text.output
    assert text.out.startswith("Spec changes from main (")
    assert all(line in text.out for line in CHANGED)
    assert "  + Task/a  create" in text.out and "  + Task/d  create" in text.out
    assert "Plan: 3 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged." in text.out
    assert text.out.index("Spec changes") < text.out.index("Plan: 3 to create")

    data = mlspec(branched.root, "plan", "--base", "main", "--format", "json").json()
    assert [s["address"] for s in data["steps"]] == ["Task/a", "Task/b", "Task/d"]
    assert data["base"]["base"] == "main" and data["base"]["head"] == "working tree"
    assert {c["address"]: c["status"] for c in data["base"]["changes"]} == {
        "Task/a": "changed", "Task/c": "removed", "Task/d": "added"}

    markdown = mlspec(branched.root, "plan", "--base", "main", "--format", "markdown")
    assert markdown.code == 0, markdown.output
    assert markdown.out.startswith("### mlspec plan\n\n")
    assert "**Spec changes from main (" in markdown.out and "| ~ | `Task/a` | changed |" in markdown.out
    assert "**Plan: 3 to create" in markdown.out and "| 🟢 | `Task/d` | create |" in markdown.out

    assert "Spec changes" not in mlspec(branched.root, "plan").out, "no --base, no spec-change section"


def test_diff_and_plan_base_leave_the_work_tree_and_head_alone(mlspec: Mlspec, branched: Repo) -> None:
    branched.write({"specs/b.yaml": task("b", params={"lr": 0.5}), "specs/e.yaml": task("e")})
    before = (branched.status(), branched.head(), branched.git("symbolic-ref", "HEAD"))
    texts = {p: p.read_bytes() for p in (branched.root / "specs").iterdir()}
    for args in (("diff", "main"), ("diff", "main", "feature"), ("diff", "feature", "main"),
                 ("plan", "--base", "main"), ("plan", "--base", "main", "--format", "markdown")):
        assert mlspec(branched.root, *args).code == 0, args
        assert (branched.status(), branched.head(), branched.git("symbolic-ref", "HEAD")) == before, args
    assert {p: p.read_bytes() for p in (branched.root / "specs").iterdir()} == texts


# --------------------------------------------------------------------------------------------------
# what is not a change, what is never shown, and a changed mlspec.yaml


def test_a_resource_moved_to_another_file_is_not_a_change(mlspec: Mlspec, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", BASE)
    repo.commit({"specs/moved/a-now-here.yaml": task("a")}, remove=("specs/a.yaml",), message="move a")
    for args in (("HEAD~1", "HEAD"), ("HEAD~1",)):
        result = mlspec(repo.root, "diff", *args)
        assert result.code == 0, result.output
        assert "0 added, 0 changed, 0 removed." in result.out and "Task/a" not in result.out, result.out

    repo.write({"specs/all.yaml": task("b") + "---\n" + task("c")})  # two files merged into one, unchanged
    repo.remove("specs/b.yaml", "specs/c.yaml")
    result = mlspec(repo.root, "diff", "HEAD~1")
    assert "0 added, 0 changed, 0 removed." in result.out, result.out


def test_a_changed_secret_shows_as_sensitive_never_its_value(
    mlspec: Mlspec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X", "first-secret-value")
    monkeypatch.setenv("Y", "second-secret-value")
    repo = make_repo(tmp_path / "repo", {"specs/a.yaml": task("a", env={"TOKEN": "${env:X}"})})
    repo.git("checkout", "-q", "-b", "rotate")
    repo.commit({"specs/a.yaml": task("a", env={"TOKEN": "${env:Y}"})})
    shown = []
    for args in (("diff", "main"), ("diff", "main", "rotate"), ("diff", "main", "--format", "json"),
                 ("diff", "main", "--format", "markdown"), ("plan", "--base", "main"),
                 ("plan", "--base", "main", "--format", "json")):
        result = mlspec(repo.root, *args)
        assert result.code == 0, result.output
        shown.append(result.output)
    assert '      ~ spec.env.TOKEN: "(sensitive)" -> "(sensitive)"' in shown[0]
    assert '"before": "(sensitive)"' in shown[2] and "`spec.env.TOKEN`" in shown[3]
    for text in shown:
        assert "secret-value" not in text, text


def test_a_changed_mlspec_yaml_reads_each_side_with_its_own_globs(mlspec: Mlspec, tmp_path: Path) -> None:
    """The branch excludes specs/b.yaml in mlspec.yaml: on that branch Task/b is no longer a spec."""
    repo = make_repo(tmp_path / "repo", BASE)
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"mlspec.yaml": "specs: ['specs/**/*.yaml']\nexclude: ['specs/b.yaml']\n",
                 "specs/a.yaml": task("a", params={"lr": 0.2})})
    for args in (("main",), ("main", "feature")):
        result = mlspec(repo.root, "diff", *args)
        assert result.code == 0, result.output
        assert "  ~ Task/a  changed  (specs/a.yaml)" in result.out, result.out
        assert "  - Task/b  removed  (specs/b.yaml)" in result.out, f"diff {' '.join(args)}:\n{result.out}"
    back = mlspec(repo.root, "diff", "feature", "main")
    assert "  + Task/b  added  (specs/b.yaml)" in back.out, back.out


# --------------------------------------------------------------------------------------------------
# bad input: refs, empty and unrelated histories, broken specs, detached heads, shallow clones


def test_a_ref_that_does_not_exist_says_so_and_suggests_a_near_branch(mlspec: Mlspec, branched: Repo) -> None:
    for args in (("diff", "mian"), ("diff", "mian", "feature"), ("diff", "main", "mian"), ("plan", "--base", "mian")):
        result = mlspec(branched.root, *args)
        assert result.code == 1, result.output
        assert "`mian` is not a commit in this repository" in result.err, result.err
        assert "did you mean `main`?" in result.err, result.err
        assert result.out == "", "nothing half-rendered on stdout"
    far = mlspec(branched.root, "diff", "nothing-like-it")
    assert far.code == 1 and "`nothing-like-it` is not a commit" in far.err and "git branch -a" in far.err


def test_a_repository_without_commits_is_a_clear_error(mlspec: Mlspec, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", BASE, commit=False)
    for args in (("diff", "main"), ("diff", "HEAD"), ("diff", "main", "HEAD"), ("plan", "--base", "main")):
        result = mlspec(repo.root, *args)
        assert result.code == 1, result.output
        assert "no commits yet" in result.err, result.err


def test_outside_a_git_repository_diff_says_so(mlspec: Mlspec, tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "specs").mkdir(parents=True)
    (root / "mlspec.yaml").write_text("specs: ['specs/**/*.yaml']\n")
    (root / "specs/a.yaml").write_text(task("a"))
    assert git(root, "rev-parse", "--git-dir", check=False) == "", "the temporary directory is inside a repo"
    result = mlspec(root, "diff", "main")
    assert result.code == 1 and "is not in a git repository" in result.err, result.output


def test_unrelated_histories_diff_and_say_they_share_no_history(mlspec: Mlspec, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", BASE)
    repo.git("checkout", "-q", "--orphan", "other")
    repo.git("rm", "-q", "-r", "--cached", ".")
    repo.remove("specs/c.yaml")
    repo.commit({"specs/a.yaml": task("a", params={"lr": 0.3})}, message="a fresh start")
    for args in (("main", "other"), ("main",)):
        result = mlspec(repo.root, "diff", *args)
        assert result.code == 0, result.output
        assert "share no history" in lines_of(result)[0], result.out
        assert "      ~ spec.params.lr: 0.1 -> 0.3" in result.out and "  - Task/c  removed" in result.out
    assert mlspec(repo.root, "diff", "main", "other", "--format", "json").json()["related"] is False
    assert "share no history" not in mlspec(repo.root, "diff", "other", "HEAD").out


BROKEN = "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: x}\nspec:\n  cmd: [true\n"


@pytest.fixture
def broken_branch(tmp_path: Path) -> Repo:
    """main (checked out) holds a and x; the branch `bad` breaks the YAML of specs/x.yaml."""
    repo = make_repo(tmp_path / "repo", {"specs/a.yaml": task("a"), "specs/x.yaml": task("x")})
    repo.git("checkout", "-q", "-b", "bad")
    repo.commit({"specs/x.yaml": BROKEN, "specs/a.yaml": task("a", params={"lr": 0.9})})
    repo.git("checkout", "-q", "main")
    return repo


def test_specs_that_do_not_parse_at_the_base_are_reported_at_the_ref(mlspec: Mlspec, broken_branch: Repo) -> None:
    for args in (("bad",), ("bad", "main")):
        result = mlspec(broken_branch.root, "diff", *args)
        assert result.code == 1, result.output
        assert "bad:specs/x.yaml:5:13: error[" in result.err and "invalid YAML" in result.err, result.err
        assert "Task/x" not in result.out, "a resource in a file that did not parse is neither added nor removed"
        assert "      ~ spec.params.lr: 0.9 -> 0.1" in result.out, "the rest is still compared"

    plan = mlspec(broken_branch.root, "plan", "--base", "bad")
    assert plan.code == 0, plan.output
    assert "bad:specs/x.yaml:5:13: error[" in plan.err
    assert "Plan: 2 to create" in plan.out, "a broken base does not block the plan"

    data = mlspec(broken_branch.root, "diff", "bad", "--format", "json")
    assert data.code == 1 and data.err == ""
    assert data.json()["diagnostics"][0]["file"] == "bad:specs/x.yaml"


def test_specs_that_do_not_parse_at_the_head_ref_are_not_reported_removed(
    mlspec: Mlspec, broken_branch: Repo
) -> None:
    result = mlspec(broken_branch.root, "diff", "main", "bad")
    assert result.code == 1, result.output
    assert "bad:specs/x.yaml:5:13: error[" in result.err, result.err
    assert "      ~ spec.params.lr: 0.1 -> 0.9" in result.out
    assert "Task/x" not in result.out, f"x did not parse at `bad`; it was not removed there:\n{result.out}"


def test_a_detached_head_diffs_and_plans(mlspec: Mlspec, branched: Repo) -> None:
    branched.git("checkout", "-q", "--detach")
    assert branched.git("symbolic-ref", "-q", "HEAD", check=False) == ""
    for args in (("diff", "main"), ("diff", "main", "HEAD"), ("plan", "--base", "main")):
        result = mlspec(branched.root, *args)
        assert result.code == 0, result.output
        assert all(line in result.out for line in CHANGED), args


@pytest.fixture
def shallow(tmp_path: Path) -> Repo:
    """A depth-1 clone of a repository with three commits on main and a branch `feature`."""
    origin = make_repo(tmp_path / "origin", BASE)
    origin.git("checkout", "-q", "-b", "feature")
    origin.commit(FEATURE)
    origin.git("checkout", "-q", "main")
    origin.commit({"specs/b.yaml": task("b", params={"lr": 0.4})})
    origin.commit({"specs/b.yaml": task("b", params={"lr": 0.5})})
    git(tmp_path, "clone", "-q", "--depth", "1", "--single-branch", "--branch", "main",
        f"file://{origin.root}", "clone")
    clone = Repo(tmp_path / "clone")
    assert (clone.root / ".git" / "shallow").exists()
    return clone


@pytest.mark.parametrize("ref", ["feature", "origin/feature"])
def test_a_shallow_clone_says_to_fetch_a_branch_it_lacks(mlspec: Mlspec, shallow: Repo, ref: str) -> None:
    for args in (("diff", ref), ("plan", "--base", ref)):
        result = mlspec(shallow.root, *args)
        assert result.code == 1, result.output
        assert "shallow clone" in result.err and "git fetch" in result.err, result.err


def test_a_shallow_clone_says_to_fetch_history_it_lacks(mlspec: Mlspec, shallow: Repo) -> None:
    """HEAD~1 names a commit the clone knows of (HEAD's parent) but does not hold."""
    for args in (("diff", "HEAD~1"), ("diff", "HEAD~1", "HEAD"), ("plan", "--base", "HEAD~1")):
        result = mlspec(shallow.root, *args)
        assert result.code == 1, result.output
        assert "shallow" in result.err and "fetch" in result.err, f"mlspec {' '.join(args)}: {result.err}"


# --------------------------------------------------------------------------------------------------
# a project in a subdirectory, and reading only what changed


def test_a_project_in_a_subdirectory_of_the_repository(mlspec: Mlspec, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"ml/mlspec.yaml": "specs: ['specs/**/*.yaml']\n",
                                         "ml/specs/a.yaml": task("a"), "ml/specs/b.yaml": task("b"),
                                         "specs/outside.yaml": task("outside")})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"ml/specs/a.yaml": task("a", params={"lr": 0.2}), "specs/outside.yaml": task("outside", cmd=["x"])},
                remove=("ml/specs/b.yaml",))
    result = mlspec(repo.root / "ml", "diff", "main", "feature")
    assert result.code == 0, result.output
    assert lines_of(result)[1:] == ["  ~ Task/a  changed  (specs/a.yaml)", "      ~ spec.params.lr: 0.1 -> 0.2",
                                    "  - Task/b  removed  (specs/b.yaml)"]
    assert "Task/outside" not in mlspec(repo.root / "ml", "diff", "main").out


def test_plan_base_reads_only_the_spec_files_that_differ(mlspec: Mlspec, tmp_path: Path) -> None:
    names = [f"t{i:03d}" for i in range(200)]
    repo = make_repo(tmp_path / "repo", {f"specs/{n}.yaml": task(n) for n in names})
    repo.git("checkout", "-q", "-b", "feature")
    edited = names[::40]
    repo.commit({f"specs/{n}.yaml": task(n, params={"lr": 0.5}) for n in edited} | {"README.md": "notes\n"})

    found = against_worktree(load_specs(repo.root), "main")
    assert found.files_read == 5
    assert [(c.address, c.status) for c in found.changes] == [(f"Task/{n}", "changed") for n in edited]

    result = mlspec(repo.root, "plan", "--base", "main")
    assert result.code == 0, result.output
    assert "0 added, 5 changed, 0 removed." in result.out and "Plan: 200 to create" in result.out


def test_a_reflog_entry_that_does_not_exist_is_a_clean_error(mlspec: Mlspec, branched: Repo) -> None:
    result = mlspec(branched.root, "diff", "HEAD@{99}")
    assert result.code == 1 and "`HEAD@{99}` is not a commit in this repository" in result.err
