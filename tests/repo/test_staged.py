"""`mlspec validate --staged`: the spec set as git's index holds it, which is what a commit holds."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.cli import Result
from tests.repo.gitrepo import make_repo, task

DATASET = ("apiVersion: mlspec/v1\nkind: Dataset\nmetadata: {name: reviews}\nspec:\n"
           "  source: {path: data/reviews.csv, format: csv}\n")
USES = ("apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: uses}\nspec:\n  cmd: ['true']\n"
        "  deps: [{ref: Dataset/reviews, output: version}]\n")


def test_an_untracked_spec_that_others_reference_fails_the_staged_check(
    mlspec: Callable[..., Result], tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "repo", {"specs/uses.yaml": USES})  # committed, referencing...
    repo.write({"specs/reviews.yaml": DATASET})  # ... a spec that is only in the work tree
    assert mlspec(repo.root, "validate").code == 0
    staged = mlspec(repo.root, "validate", "--staged")
    assert staged.code == 1 and "specs/uses.yaml:6:" in staged.out and "Dataset/reviews" in staged.out, staged.output
    repo.git("add", "specs/reviews.yaml")
    assert mlspec(repo.root, "validate", "--staged").code == 0


def test_an_unstaged_fix_does_not_pass_the_staged_check(mlspec: Callable[..., Result], tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"specs/a.yaml": task("a")})
    repo.write({"specs/a.yaml": task("a").replace("cmd", "cmdd")})
    repo.git("add", "specs/a.yaml")  # the broken spec is staged ...
    repo.write({"specs/a.yaml": task("a")})  # ... and fixed only in the work tree
    assert mlspec(repo.root, "validate").code == 0
    staged = mlspec(repo.root, "validate", "--staged")
    assert staged.code == 1 and "unknown field `cmdd`" in staged.out, staged.output
