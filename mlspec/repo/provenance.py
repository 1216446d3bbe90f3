"""Who applied what, from which commit: recorded in state and the audit log by every apply.

Two GitOps rules are checked here: apply what is committed (a dirty tree is refused unless asked),
and main moves forward (a commit that does not descend from the last applied one is refused unless
asked), so that state always corresponds to a commit everyone can see, in order.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.errors import GitError

if TYPE_CHECKING:
    import git

# CI systems name who started a run, and which branch a detached checkout is on, in the environment.
ACTOR_VARIABLES = ("MLSPEC_ACTOR", "GITHUB_ACTOR", "GITLAB_USER_LOGIN", "BUILDKITE_BUILD_CREATOR")
BRANCH_VARIABLES = ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "CI_COMMIT_REF_NAME", "BUILDKITE_BRANCH")
DIRTY_SHOWN = 5


@dataclass(frozen=True)
class Provenance:
    commit: str | None  # None: not a git repository, or no commits yet
    branch: str | None  # None: a detached HEAD outside CI
    dirty: bool
    who: str
    author: str | None = None  # the commit's author (name <email>): what owner policies match
    ci: str | None = None  # "github-actions run 1234" when run by CI
    dirty_files: tuple[str, ...] = ()
    # Project-relative, POSIX: files git does not track that are not ignored (`??`), and the files it
    # tracks. What is dirty depends on what a plan reads (`covering`): not every stray file matters.
    untracked: frozenset[str] = frozenset()
    tracked: frozenset[str] | None = None  # None: not a git repository

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["dirty_files"] = list(self.dirty_files[:DIRTY_SHOWN])
        for private in ("untracked", "tracked"):
            data.pop(private)
        return data

    def covering(self, specs: Iterable[str], inputs: Iterable[str] = ()) -> Provenance:
        """Dirty as far as a plan that read these files goes: a tracked file modified anywhere (a commit
        that does not hold what runs), a spec or mlspec.yaml that git does not track (untracked or
        ignored: the commit does not contain it), and an input git could track but does not (a script
        someone forgot to add). An ignored input (data kept out of git on purpose) and an unrelated
        untracked file (a tool's cache) are not."""
        if self.tracked is None:
            return self
        read = set(inputs)
        dirty = set(self.dirty_files) - self.untracked  # modified, deleted, staged tracked files
        dirty |= {f for f in specs if f not in self.tracked}
        dirty |= {f for f in read if f in self.untracked}
        return replace(self, dirty=bool(dirty), dirty_files=tuple(sorted(dirty)))


def collect(root: Path) -> Provenance:
    """Read-only: git (when the project is in a repository) and the environment."""
    from mlspec.repo.checkout import has_commits, open_checkout

    ci = _ci()
    try:
        checkout = open_checkout(root)
    except GitError:
        return Provenance(None, _env_branch(), False, _actor(None), None, ci)
    repo = checkout.repo
    who = _actor(repo)
    commit = author = branch = None
    if has_commits(checkout):
        head = repo.head.commit
        commit, author = head.hexsha, f"{head.author.name} <{head.author.email}>"
        branch = None if repo.head.is_detached else repo.active_branch.name
    status = checkout.git("status", "--porcelain", "-z", "--no-renames", "--untracked-files=all", "--",
                          checkout.prefix or ".", f":(exclude){checkout.prefix}.mlspec")
    entries = [entry for entry in status.split("\0") if len(entry) > 3]
    dirty = tuple(sorted({_project(checkout.prefix, e[3:]) for e in entries}))
    untracked = frozenset(_project(checkout.prefix, e[3:]) for e in entries if e.startswith("??"))
    listed = checkout.git("ls-files", "-z", "--", checkout.prefix or ".")
    tracked = frozenset(_project(checkout.prefix, f) for f in listed.split("\0") if f)
    return Provenance(commit, branch or _env_branch(), bool(dirty), who, author, ci, dirty, untracked, tracked)


def _project(prefix: str, path: str) -> str:
    """A repository path as the project sees it (status and ls-files speak from the repository's root)."""
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def check_clean(found: Provenance) -> None:
    """Refuse a dirty tree; call it on `found.covering(...)`, the files a plan reads."""
    if found.dirty:
        shown = ", ".join(found.dirty_files[:DIRTY_SHOWN])
        more = f" and {len(found.dirty_files) - DIRTY_SHOWN} more" if len(found.dirty_files) > DIRTY_SHOWN else ""
        raise GitError(
            f"the working tree has uncommitted changes ({shown}{more}): commit them (and put task outputs in "
            ".gitignore), or pass --allow-dirty to apply what no commit records"
        )


def check_forward(root: Path, found: Provenance, last: dict[str, Any] | None) -> None:
    """Refuse to apply a commit that does not descend from the last applied one."""
    from mlspec.repo.checkout import is_ancestor, open_checkout

    previous = (last or {}).get("commit")
    if not previous or not found.commit or previous == found.commit:
        return
    by = f" by {last.get('who')}" if last and last.get("who") else ""
    when = f" at {last.get('at')}" if last and last.get("at") else ""
    verdict = is_ancestor(open_checkout(root), previous, found.commit)
    if verdict is None:
        raise GitError(
            f"cannot tell whether {found.commit[:8]} descends from {previous[:8]}, the commit last applied{by}"
            f"{when}: that commit is not in this clone (fetch the history, e.g. `fetch-depth: 0` in GitHub "
            "Actions), or pass --allow-rewind"
        )
    if not verdict:
        raise GitError(
            f"{found.commit[:8]} does not descend from {previous[:8]}, the commit last applied{by}{when}: main "
            "moves forward, so rebase or merge first, or pass --allow-rewind to apply an older or unrelated "
            "commit on purpose"
        )


def _actor(repo: git.Repo | None) -> str:
    for variable in ACTOR_VARIABLES:
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        import git

        # The repository's own config first (it includes the user's global one), as git commit reads it.
        reader = repo.config_reader() if repo is not None else git.GitConfigParser(None, read_only=True)
        name, email = reader.get_value("user", "name", ""), reader.get_value("user", "email", "")
        if name or email:
            return f"{name} <{email}>" if email else str(name)
    except Exception:  # no git config: fall through
        pass
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _env_branch() -> str | None:
    return next((os.environ[v] for v in BRANCH_VARIABLES if os.environ.get(v)), None)


def _ci() -> str | None:
    if os.environ.get("GITHUB_RUN_ID"):
        return f"github-actions run {os.environ['GITHUB_RUN_ID']}"
    if os.environ.get("CI_PIPELINE_ID"):
        return f"gitlab-ci pipeline {os.environ['CI_PIPELINE_ID']}"
    return "ci" if os.environ.get("CI") else None
