"""Opening the git repository a project lives in, and resolving refs with errors that say what to do.

gitpython is imported here only, and only by commands that need git (`plan --base`, `diff`, `apply`'s
provenance): `mlspec validate` never pays for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec.errors import GitError

if TYPE_CHECKING:
    import git


@dataclass(frozen=True)
class Checkout:
    repo: git.Repo
    prefix: str  # the project root inside the repository: "" or "path/to/project/"

    @property
    def shallow(self) -> bool:
        return os.path.exists(os.path.join(self.repo.git_dir, "shallow"))

    def git(self, *args: str) -> str:
        """Run a git command in the repository; its failure is a GitError with git's own words."""
        import git as gitlib

        try:
            return str(self.repo.git.execute(["git", *args], strip_newline_in_stdout=False))
        except gitlib.GitCommandError as err:
            raise GitError(f"git {' '.join(args[:2])} failed: {(err.stderr or '').strip() or err}") from None

    def project_path(self, repo_path: str) -> str | None:
        """A repository path as the project sees it (None when it lies outside the project)."""
        return repo_path[len(self.prefix):] if repo_path.startswith(self.prefix) else None


def open_checkout(root: Path) -> Checkout:
    import git as gitlib

    try:
        repo = gitlib.Repo(root, search_parent_directories=True)
    except gitlib.InvalidGitRepositoryError:
        raise GitError(f"{root} is not in a git repository: run `git init` and commit the specs") from None
    except gitlib.NoSuchPathError:
        raise GitError(f"{root} does not exist") from None
    if repo.working_tree_dir is None:
        raise GitError(f"{repo.git_dir} is a bare repository: run mlspec in a checkout")
    top = Path(repo.working_tree_dir).resolve()
    inside = root.resolve().relative_to(top).as_posix()
    return Checkout(repo, "" if inside == "." else inside + "/")


def has_commits(checkout: Checkout) -> bool:
    try:
        return checkout.repo.head.is_valid()
    except ValueError:
        return False


def resolve(checkout: Checkout, ref: str) -> git.Commit:
    """The commit `ref` names, or a GitError that says why not and what to run."""
    import git as gitlib
    from gitdb.exc import BadName, BadObject  # type: ignore[import-untyped]

    if not has_commits(checkout) and ref in ("HEAD", "@"):
        raise GitError("the repository has no commits yet: commit the specs first")
    try:
        commit = checkout.repo.commit(ref)
        # `HEAD~1` resolves from the child's parent line even when the parent itself was never fetched.
        checkout.repo.git.cat_file("-e", f"{commit.hexsha}^{{commit}}")
    except (BadName, BadObject, ValueError, IndexError, gitlib.GitCommandError):  # IndexError: `HEAD@{99}`
        raise GitError(f"`{ref}` is not a commit in this repository" + _hint(checkout, ref)) from None
    return commit


def _hint(checkout: Checkout, ref: str) -> str:
    from mlspec.spec.suggest import did_you_mean

    if not has_commits(checkout):
        return " (the repository has no commits yet)"
    if checkout.shallow:
        name = ref.removeprefix("origin/")
        return (f"; this is a shallow clone, so fetch it first: `git fetch --depth=1 origin {name}` "
                f"(in GitHub Actions, `fetch-depth: 0` on actions/checkout fetches everything)")
    names = [r.name for r in checkout.repo.refs]
    hint = did_you_mean(ref, names)
    return f"; {hint}" if hint else "; `git branch -a` lists the refs there are (fetch it if it is remote)"


def is_ancestor(checkout: Checkout, older: str, newer: str) -> bool | None:
    """True or False, or None when git cannot tell (a commit missing from a shallow clone)."""
    import git as gitlib

    try:
        checkout.repo.git.merge_base("--is-ancestor", older, newer)
        return True
    except gitlib.GitCommandError as err:
        return False if err.status == 1 else None
