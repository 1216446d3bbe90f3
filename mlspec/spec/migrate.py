"""Upgrading specs written for an older apiVersion, in place, keeping every comment and every byte
of formatting that the conversion does not have to change.

ruamel.yaml's round-trip loader finds where each key and value was written; the conversion then
edits exactly those spans of the original text (a renamed key, the apiVersion value), bottom to
top, instead of re-dumping the document, so quoting, flow style, indentation and comments are kept.

Conversions are data: one `Migration` per older apiVersion, a list of field renames.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlspec.spec.vocabulary import API_VERSION


@dataclass(frozen=True, slots=True)
class Rename:
    kind: str | None  # None: every kind
    path: tuple[str, ...]  # from the document root, ending in the old key
    new: str

    def describe(self) -> str:
        return f"{'.'.join(self.path)} -> {self.new}"


@dataclass(frozen=True, slots=True)
class Migration:
    source: str
    target: str
    renames: tuple[Rename, ...]


MIGRATIONS: dict[str, Migration] = {
    "mlspec/v1alpha1": Migration("mlspec/v1alpha1", API_VERSION, (
        Rename(None, ("spec", "dependsOn"), "depends_on"),
        Rename("Model", ("spec", "hyperparameters", "lr"), "learning_rate"),
        Rename("Task", ("spec", "command"), "cmd"),
    )),
}


@dataclass
class FileMigration:
    file: str
    before: str
    after: str
    applied: list[str] = field(default_factory=list)  # what was done, for the report
    problems: list[str] = field(default_factory=list)  # what could not be done (the file is left alone)

    @property
    def changed(self) -> bool:
        return self.after != self.before

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(True), self.after.splitlines(True),
                                            f"a/{self.file}", f"b/{self.file}"))


@dataclass(frozen=True, slots=True)
class _Edit:
    line: int  # 0-based
    col: int
    old: str  # the exact text expected there
    new: str


def migrate_text(text: str, file: str) -> FileMigration:
    """Convert every document of an older apiVersion in `text`; documents already current are untouched."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    out = FileMigration(file, text, text)
    try:
        documents = list(YAML(typ="rt").load_all(text))
    except YAMLError as err:
        out.problems.append(f"not valid YAML ({str(err).splitlines()[0]}): fix it with `mlspec validate` first")
        return out
    lines = text.splitlines(True)
    edits: list[_Edit] = []
    for doc in documents:
        if not hasattr(doc, "lc"):
            continue
        migration = MIGRATIONS.get(str(doc.get("apiVersion")))
        if migration is None:
            continue
        kind = doc.get("kind")
        for rename in migration.renames:
            if rename.kind not in (None, kind):
                continue
            edit = _rename(doc, rename, lines, out)
            if edit is not None:
                edits.append(edit)
                out.applied.append(f"{kind}/{_name(doc)}: {rename.describe()}")
        line, col = doc.lc.value("apiVersion")
        edits.append(_value_edit(lines, line, col, migration.source, migration.target))
        out.applied.append(f"{kind}/{_name(doc)}: apiVersion {migration.source} -> {migration.target}")
    if out.problems:
        return out
    for edit in sorted(edits, key=lambda e: (e.line, e.col), reverse=True):
        current = lines[edit.line]
        if current[edit.col : edit.col + len(edit.old)] != edit.old:  # never edit what we did not find
            out.problems.append(f"line {edit.line + 1}: expected `{edit.old}` at column {edit.col + 1}")
            return FileMigration(file, text, text, [], out.problems)
        lines[edit.line] = current[: edit.col] + edit.new + current[edit.col + len(edit.old) :]
    out.after = "".join(lines)
    return out


def _rename(doc: Any, rename: Rename, lines: Sequence[str], out: FileMigration) -> _Edit | None:
    parent = doc
    for key in rename.path[:-1]:
        parent = parent.get(key) if hasattr(parent, "get") else None
        if parent is None:
            return None
    old = rename.path[-1]
    if not hasattr(parent, "lc") or old not in parent:
        return None
    if rename.new in parent:
        out.problems.append(f"{'.'.join(rename.path)} and {rename.new} are both set: keep one, then migrate")
        return None
    line, col = parent.lc.key(old)
    written = lines[line][col:]
    quote = written[0] if written[:1] in ("'", '"') else ""
    return _Edit(line, col, f"{quote}{old}{quote}", f"{quote}{rename.new}{quote}")


def _value_edit(lines: Sequence[str], line: int, col: int, old: str, new: str) -> _Edit:
    written = lines[line][col:]
    quote = written[0] if written[:1] in ("'", '"') else ""
    return _Edit(line, col, f"{quote}{old}{quote}", f"{quote}{new}{quote}")


def _name(doc: Any) -> str:
    metadata = doc.get("metadata")
    return str(metadata.get("name")) if hasattr(metadata, "get") else "?"


def renames() -> Iterator[tuple[str, Rename]]:
    for source, migration in MIGRATIONS.items():
        for rename in migration.renames:
            yield source, rename
