"""apply's GitOps rules and provenance: apply what is committed, move forward, record who and from where.

Each test makes a real git repository (git CLI, its own user.name/user.email) and drives `mlspec
apply -y` in-process. What apply recorded is read back as a user would: `mlspec state show --format
json` (the commit a resource was applied from) and `mlspec audit log --format json` (who, commit,
branch, dirty).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli import Result
from tests.repo.gitrepo import EMAIL, NAME, Repo, git, make_repo, task

Mlspec = Callable[..., Result]
ME = f"{NAME} <{EMAIL}>"




@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return make_repo(tmp_path / "repo", {"specs/a.yaml": task("a"), "specs/b.yaml": task("b")})


def applied_commit(mlspec: Mlspec, root: Path, address: str = "Task/a") -> str | None:
    shown = mlspec(root, "state", "show", address, "--format", "json")
    assert shown.code == 0, shown.output
    commit: str | None = shown.json()["commit"]
    return commit


def audit_entries(mlspec: Mlspec, root: Path) -> list[dict[str, Any]]:
    result = mlspec(root, "audit", "log", "--format", "json")
    assert result.code == 0, result.output
    entries: list[dict[str, Any]] = result.json()["entries"]
    return entries


def lr(value: float) -> dict[str, str]:
    return {"specs/a.yaml": task("a", params={"lr": value})}


# --------------------------------------------------------------------------------------------------
# a clean tree applies, and state says from which commit


def test_a_clean_repo_applies_and_state_records_the_commit(mlspec: Mlspec, repo: Repo) -> None:
    assert repo.status() == ""
    applied = mlspec(repo.root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert "Apply complete: 2 step(s) done." in applied.out
    first = repo.head()
    assert applied_commit(mlspec, repo.root, "Task/a") == first
    assert applied_commit(mlspec, repo.root, "Task/b") == first
    listed = mlspec(repo.root, "state", "list", "--format", "json").json()
    assert {r["address"]: r["status"] for r in listed["resources"]} == {"Task/a": "applied", "Task/b": "applied"}

    second = repo.commit(lr(0.2))
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert applied_commit(mlspec, repo.root, "Task/a") == second, "a re-applied resource records the new commit"
    assert applied_commit(mlspec, repo.root, "Task/b") == first, "an untouched one keeps its commit"
    assert repo.status() == "", "apply leaves nothing for git to see (.mlspec/ is ignored)"


# --------------------------------------------------------------------------------------------------
# apply what is committed


def test_an_untracked_file_the_plan_does_not_read_is_not_dirt(mlspec: Mlspec, repo: Repo) -> None:
    """A tool's cache, a note: the commit still holds everything the plan reads."""
    repo.write({"notes.txt": "todo\n", ".cache/tool/x.bin": "x"})
    applied = mlspec(repo.root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert audit_entries(mlspec, repo.root)[0]["dirty"] is False


def test_an_untracked_script_a_task_reads_is_dirt(mlspec: Mlspec, repo: Repo) -> None:
    repo.commit({"specs/s.yaml": task("s", deps=["scripts/new.py"])}, message="a task reading a script")
    repo.write({"scripts/new.py": "print(1)\n"})
    refused = mlspec(repo.root, "apply", "-y")
    assert refused.code == 1 and "scripts/new.py" in refused.err, refused.output


@pytest.mark.parametrize(
    ("dirty", "named"),
    [
        ({"specs/a.yaml": task("a", params={"lr": 0.2})}, "specs/a.yaml"),  # an uncommitted edit
        ({"specs/new.yaml": task("new")}, "specs/new.yaml"),  # an untracked spec
        ({"specs/hidden.yaml": task("hidden")}, "specs/hidden.yaml"),  # ignored (see below)
    ],
)
def test_a_dirty_tree_is_refused_unless_allowed(
    mlspec: Mlspec, repo: Repo, dirty: dict[str, str], named: str
) -> None:
    if "specs/hidden.yaml" in dirty:  # ignored by git, so `git status` never shows it: still read, still dirt
        repo.commit({".gitignore": (repo.root / ".gitignore").read_text() + "specs/hidden.yaml\n"})
    repo.write(dirty)
    refused = mlspec(repo.root, "apply", "-y")
    assert refused.code == 1, refused.output
    assert "uncommitted changes" in refused.err and named in refused.err and "--allow-dirty" in refused.err
    assert not (repo.root / ".mlspec" / "state.db").exists(), "nothing was applied, no state was made"

    allowed = mlspec(repo.root, "apply", "-y", "--allow-dirty")
    assert allowed.code == 0, allowed.output
    assert "Apply complete" in allowed.out
    started = audit_entries(mlspec, repo.root)[0]
    assert started["dirty"] is True and named in started["dirty_files"]
    assert started["commit"] == repo.head(), "the commit under the dirty tree"


def test_a_staged_but_uncommitted_edit_is_dirty_too(mlspec: Mlspec, repo: Repo) -> None:
    repo.write(lr(0.2))
    repo.git("add", "specs/a.yaml")
    refused = mlspec(repo.root, "apply", "-y")
    assert refused.code == 1 and "specs/a.yaml" in refused.err, refused.output


def test_the_mlspec_directory_never_counts_as_dirty(mlspec: Mlspec, tmp_path: Path) -> None:
    """Even where .gitignore forgets .mlspec/, the state and audit log apply writes do not make the tree dirty."""
    repo = make_repo(tmp_path / "repo", {"specs/a.yaml": task("a"), ".gitignore": "out/\n"})
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert ".mlspec/" in repo.status(), "git itself does see .mlspec/"
    repo.commit(lr(0.2))
    again = mlspec(repo.root, "apply", "-y")
    assert again.code == 0, again.output
    assert "Apply complete: 1 step(s) done." in again.out
    assert audit_entries(mlspec, repo.root)[-1]["dirty"] is False


def test_ignored_task_outputs_do_not_make_the_tree_dirty(mlspec: Mlspec, repo: Repo) -> None:
    writes = ["sh", "-c", "mkdir -p out && echo hi > out/a.txt"]
    repo.commit({"specs/a.yaml": task("a", cmd=writes, outs=["out/a.txt"])})
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert (repo.root / "out/a.txt").exists() and repo.status() == ""
    repo.commit({"specs/a.yaml": task("a", cmd=writes, outs=["out/a.txt"], params={"lr": 0.3})})
    assert mlspec(repo.root, "apply", "-y").code == 0


# --------------------------------------------------------------------------------------------------
# main moves forward


def test_a_commit_that_does_not_descend_from_the_last_applied_is_refused(mlspec: Mlspec, repo: Repo) -> None:
    a = repo.head()
    repo.git("checkout", "-q", "-b", "feature")
    b = repo.commit(lr(0.2), message="B")
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert applied_commit(mlspec, repo.root) == b

    repo.git("checkout", "-q", "main")  # A: an ancestor of B, not a descendant
    refused = mlspec(repo.root, "apply", "-y")
    assert refused.code == 1, refused.output
    assert f"{a[:8]} does not descend from {b[:8]}" in refused.err
    assert f"the commit last applied by {ME}" in refused.err and "--allow-rewind" in refused.err
    assert applied_commit(mlspec, repo.root) == b, "nothing was applied"
    assert len(audit_entries(mlspec, repo.root)) == 2, "a refused apply writes no audit entry"

    rewound = mlspec(repo.root, "apply", "-y", "--allow-rewind")
    assert rewound.code == 0, rewound.output
    assert applied_commit(mlspec, repo.root) == a

    c = repo.commit(lr(0.3), message="C")  # forward from A again: fine
    forward = mlspec(repo.root, "apply", "-y")
    assert forward.code == 0, forward.output
    assert applied_commit(mlspec, repo.root) == c


def test_moving_forward_applies(mlspec: Mlspec, repo: Repo) -> None:
    assert mlspec(repo.root, "apply", "-y").code == 0
    repo.git("checkout", "-q", "-b", "feature")
    b = repo.commit(lr(0.2))
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "feature")
    assert mlspec(repo.root, "apply", "-y").code == 0, "a fast-forward descends"
    assert applied_commit(mlspec, repo.root) == b
    repo.commit({"specs/b.yaml": task("b", params={"lr": 0.9})})
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert mlspec(repo.root, "apply", "-y").code == 0, "the same commit again: nothing to refuse"


def test_an_unrelated_commit_is_refused_unless_allowed(mlspec: Mlspec, repo: Repo) -> None:
    assert mlspec(repo.root, "apply", "-y").code == 0
    repo.git("checkout", "-q", "--orphan", "other")
    repo.commit(lr(0.5), message="unrelated")
    refused = mlspec(repo.root, "apply", "-y")
    assert refused.code == 1 and "does not descend" in refused.err, refused.output
    assert mlspec(repo.root, "apply", "-y", "--allow-rewind").code == 0


# --------------------------------------------------------------------------------------------------
# outside git, and who and which branch


def test_outside_a_git_repository_apply_works_and_records_no_commit(mlspec: Mlspec, tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "specs").mkdir(parents=True)
    (root / "mlspec.yaml").write_text("specs: ['specs/**/*.yaml']\n")
    (root / "specs/a.yaml").write_text(task("a"))
    assert git(root, "rev-parse", "--git-dir", check=False) == "", "the temporary directory is inside a repo"
    applied = mlspec(root, "apply", "-y")
    assert applied.code == 0, applied.output
    assert applied_commit(mlspec, root) is None
    (root / "specs/a.yaml").write_text(task("a", params={"lr": 0.2}))
    assert mlspec(root, "apply", "-y").code == 0, "no git, no dirty tree"
    entry = audit_entries(mlspec, root)[-1]
    assert (entry["commit"], entry["branch"], entry["dirty"], entry["author"]) == (None, None, False, None)


@pytest.mark.parametrize(
    ("variables", "who"),
    [
        ({}, ME),
        ({"GITHUB_ACTOR": "octocat"}, "octocat"),
        ({"MLSPEC_ACTOR": "release-bot"}, "release-bot"),
        ({"MLSPEC_ACTOR": "release-bot", "GITHUB_ACTOR": "octocat"}, "release-bot"),
    ],
)
def test_who_applied(
    mlspec: Mlspec, repo: Repo, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], who: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert mlspec(repo.root, "apply", "-y").code == 0
    entries = audit_entries(mlspec, repo.root)
    assert [e["who"] for e in entries] == [who, who]
    assert all(e["author"] == ME for e in entries), "the commit's author, whoever applied it"


def test_who_comes_from_the_repository_config(mlspec: Mlspec, repo: Repo) -> None:
    repo.git("config", "user.name", "Grace Hopper")
    repo.git("config", "user.email", "grace@example.com")
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert audit_entries(mlspec, repo.root)[0]["who"] == "Grace Hopper <grace@example.com>"


def test_the_branch_of_a_detached_head_comes_from_ci(
    mlspec: Mlspec, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.git("checkout", "-q", "--detach")
    monkeypatch.setenv("GITHUB_REF_NAME", "main")
    monkeypatch.setenv("GITHUB_RUN_ID", "1234")
    assert mlspec(repo.root, "apply", "-y").code == 0
    entry = audit_entries(mlspec, repo.root)[0]
    assert (entry["branch"], entry["commit"], entry["ci"]) == ("main", repo.head(), "github-actions run 1234")

    monkeypatch.delenv("GITHUB_REF_NAME")
    repo.commit(lr(0.2))
    assert mlspec(repo.root, "apply", "-y").code == 0
    assert audit_entries(mlspec, repo.root)[-1]["branch"] is None, "detached, outside CI: no branch to name"


def test_a_checked_out_branch_is_named(mlspec: Mlspec, repo: Repo) -> None:
    repo.git("checkout", "-q", "-b", "release/1.0")
    assert mlspec(repo.root, "apply", "-y").code == 0
    entries = audit_entries(mlspec, repo.root)
    assert [e["branch"] for e in entries] == ["release/1.0", "release/1.0"]
    assert json.dumps(entries).count(repo.head()) == 2
