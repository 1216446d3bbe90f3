"""Specs as they are at a git ref, read straight from git objects: no checkout, no work tree touched.

Only what differs is read. `git diff --name-only` (answered from git's index, in milliseconds) says
which files differ between a ref and the work tree, or between two refs; a file that did not change
holds the same resources on both sides, so comparing the changed files alone gives the whole
difference. Only when mlspec.yaml itself changed (the spec globs may differ) is every spec at the
ref read.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.repo.checkout import Checkout
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.globs import compile_glob
from mlspec.spec.vocabulary import PROJECT_FILE

if TYPE_CHECKING:
    import git

    from mlspec.project import Project


@dataclass(frozen=True, slots=True)
class SpecRecord:
    """One resource as written at some point in history: what a spec-level diff compares."""

    address: str
    file: str
    metadata: dict[str, Any]
    spec: dict[str, Any]

    def material(self) -> dict[str, Any]:
        return {"metadata": self.metadata, "spec": self.spec}


@dataclass
class Snapshot:
    label: str  # how diagnostics name this side: `main` -> `main:specs/x.yaml:3:5`
    records: dict[str, SpecRecord] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # `label:path` -> text, to show source lines
    files_read: int = 0


def parse(texts: Mapping[str, str], label: str) -> Snapshot:
    """Spec files' texts -> records, with every problem reported as `LABEL:path:line:col`."""
    from mlspec.spec.specset import Resource, read_resources

    out = Snapshot(label, files_read=len(texts))
    for rel, text in sorted(texts.items()):
        shown = f"{label}:{rel}"
        found, diagnostics = read_resources(text, shown)
        if diagnostics:
            out.diagnostics.extend(diagnostics)
            out.texts[shown] = text  # to show the source lines under them
        for doc, envelope in found:
            resource = Resource(envelope.address, envelope, rel, doc)
            out.records[envelope.address] = SpecRecord(envelope.address, rel, resource.metadata_data(),
                                                       resource.spec_data())
    return out


def is_spec(path: str, project: Project) -> bool:
    """Does the project's glob set (specs minus exclude) name this project-relative path?"""
    if not path.endswith((".yaml", ".yml")):
        return False
    included = any(compile_glob(p).match(path) for p in project.setting("specs"))
    return included and not any(compile_glob(p).match(path) or fnmatch.fnmatch(path, p)
                                for p in project.setting("exclude"))


def changed_against_worktree(checkout: Checkout, commit: git.Commit) -> set[str]:
    """Project-relative paths that differ between `commit` and the work tree (untracked ones included)."""
    where = checkout.prefix or "."
    names = checkout.git("diff", "--name-only", "--no-renames", "-z", commit.hexsha, "--", where)
    untracked = checkout.git("ls-files", "--others", "--exclude-standard", "--full-name", "-z", "--", where)
    return _project_paths(checkout, (names + untracked).split("\0"))


def changed_between(checkout: Checkout, old: git.Commit, new: git.Commit) -> set[str]:
    where = checkout.prefix or "."
    names = checkout.git("diff", "--name-only", "--no-renames", "-z", old.hexsha, new.hexsha, "--", where)
    return _project_paths(checkout, names.split("\0"))


def all_paths(checkout: Checkout, commit: git.Commit) -> set[str]:
    names = checkout.git("ls-tree", "-r", "--name-only", "--full-name", "-z", commit.hexsha, "--",
                         checkout.prefix or ".")
    return _project_paths(checkout, names.split("\0"))


def _project_paths(checkout: Checkout, names: Iterable[str]) -> set[str]:
    return {p for p in (checkout.project_path(n) for n in names if n) if p is not None}


def read_at(checkout: Checkout, commit: git.Commit, paths: Iterable[str]) -> dict[str, str]:
    """The texts of project-relative paths at `commit`; paths absent there are left out."""
    out: dict[str, str] = {}
    tree = commit.tree
    for rel in paths:
        try:
            blob = tree / (checkout.prefix + rel)
        except KeyError:
            continue  # added after `commit`
        if blob.type != "blob":
            continue
        out[rel] = blob.data_stream.read().decode("utf-8", errors="replace")
    return out


def snapshot_at(
    checkout: Checkout, commit: git.Commit, label: str, project: Project, only: Iterable[str] | None = None
) -> Snapshot:
    """The spec records at `commit`: of the files in `only`, or of every spec file there."""
    paths = all_paths(checkout, commit) if only is None else set(only)
    return parse(read_at(checkout, commit, sorted(p for p in paths if is_spec(p, project))), label)


def config_changed(paths: set[str]) -> bool:
    return PROJECT_FILE in paths


def project_at(checkout: Checkout, commit: git.Commit, project: Project) -> Project:
    """The project as `commit` configured it: its own mlspec.yaml decides which files are specs there.

    An mlspec.yaml that is missing there means the defaults; one that cannot be read falls back to
    the current configuration (the comparison is then approximate, not refused).
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    from mlspec.config import ProjectConfig
    from mlspec.project import Project as ProjectClass

    text = read_at(checkout, commit, [PROJECT_FILE]).get(PROJECT_FILE)
    if text is None:
        return ProjectClass(project.root, ProjectConfig(), None)
    try:
        data = YAML(typ="safe").load(text) or {}
        return ProjectClass(project.root, ProjectConfig.model_validate(data), None)
    except (YAMLError, ValueError):
        return project
