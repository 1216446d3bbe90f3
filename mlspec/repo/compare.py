"""Spec-level differences between a git ref and the work tree, or between two refs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.plan.specdiff import SpecChange, compare
from mlspec.repo.checkout import Checkout, has_commits, is_ancestor, open_checkout, resolve
from mlspec.repo.snapshot import (
    Snapshot,
    changed_against_worktree,
    changed_between,
    config_changed,
    is_spec,
    project_at,
    snapshot_at,
)
from mlspec.spec.diagnostics import Diagnostic

if TYPE_CHECKING:
    from mlspec.project import Project
    from mlspec.spec.specset import SpecSet


@dataclass
class Comparison:
    base: str  # the ref as given
    base_commit: str
    head: str  # a ref, or "working tree"
    head_commit: str | None
    changes: list[SpecChange]
    diagnostics: list[Diagnostic] = field(default_factory=list)  # specs at a ref that do not parse
    texts: dict[str, str] = field(default_factory=dict)
    related: bool = True  # False: the two sides share no history
    files_read: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"base": self.base, "base_commit": self.base_commit, "head": self.head,
                "head_commit": self.head_commit, "related": self.related,
                "changes": [c.to_json() for c in self.changes],
                "diagnostics": [d.to_json() for d in self.diagnostics]}


def against_worktree(specs: SpecSet, ref: str) -> Comparison:
    """What the work tree (this branch, with uncommitted edits) changes in the specs relative to `ref`."""
    project = specs.project
    checkout = open_checkout(project.root)
    commit = resolve(checkout, ref)
    changed = changed_against_worktree(checkout, commit)
    if config_changed(changed):  # each side's own globs decide: compare everything
        old = snapshot_at(checkout, commit, ref, project_at(checkout, commit, project))
        current = list(specs.resources.values())
    else:
        files = {p for p in changed if is_spec(p, project)}
        old = snapshot_at(checkout, commit, ref, project, only=files)
        current = [r for r in specs.resources.values() if r.file in files]
    after = {r.address: {"metadata": r.metadata_data(), "spec": r.spec_data()} for r in current}
    where = {a: rec.file for a, rec in old.records.items()} | {r.address: r.file for r in current}
    head = checkout.repo.head.commit.hexsha if has_commits(checkout) else None
    return _comparison(checkout, ref, commit.hexsha, "working tree", head, old, after, where)


def between(project: Project, base: str, head: str) -> Comparison:
    """The spec-level difference between two refs, read from git objects alone."""
    checkout = open_checkout(project.root)
    old_commit, new_commit = resolve(checkout, base), resolve(checkout, head)
    changed = changed_between(checkout, old_commit, new_commit)
    if config_changed(changed):  # each side's own globs decide: compare everything
        old = snapshot_at(checkout, old_commit, base, project_at(checkout, old_commit, project))
        new = snapshot_at(checkout, new_commit, head, project_at(checkout, new_commit, project))
    else:
        only = {p for p in changed if is_spec(p, project)}
        old = snapshot_at(checkout, old_commit, base, project, only=only)
        new = snapshot_at(checkout, new_commit, head, project, only=only)
    after = {a: rec.material() for a, rec in new.records.items()}
    where = {a: rec.file for a, rec in old.records.items()} | {a: rec.file for a, rec in new.records.items()}
    out = _comparison(checkout, base, old_commit.hexsha, head, new_commit.hexsha, old, after, where,
                      broken=_broken(new))
    out.diagnostics += new.diagnostics
    out.texts |= new.texts
    out.files_read += new.files_read
    return out


def _comparison(
    checkout: Checkout,
    base: str,
    base_commit: str,
    head: str,
    head_commit: str | None,
    old: Snapshot,
    after: dict[str, dict[str, Any]],
    where: dict[str, str],
    broken: set[str] | None = None,
) -> Comparison:
    # A file that does not parse on one side has no records there: its resources would look added or
    # removed. What it holds is unknown, so it is left out of the comparison on both sides.
    broken = (broken or set()) | _broken(old)
    before = {a: rec.material() for a, rec in old.records.items() if rec.file not in broken}
    after = {a: m for a, m in after.items() if where.get(a) not in broken}
    related = True
    if head_commit is not None:
        related = _related(checkout, base_commit, head_commit)
    return Comparison(base, base_commit, head, head_commit, compare(before, after, where), old.diagnostics,
                      dict(old.texts), related, old.files_read)


def _broken(side: Snapshot) -> set[str]:
    """Files of a snapshot that did not parse (diagnostics name them `LABEL:path`)."""
    return {d.file.split(":", 1)[1] for d in side.diagnostics if d.is_error and ":" in d.file}


def _related(checkout: Checkout, a: str, b: str) -> bool:
    if is_ancestor(checkout, a, b) or is_ancestor(checkout, b, a):
        return True
    try:
        return bool(checkout.repo.merge_base(a, b))
    except Exception:  # git could not tell (a shallow clone): assume related, say nothing
        return True
