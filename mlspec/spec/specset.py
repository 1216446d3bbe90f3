"""The whole spec set as typed resources: the input of `plan`.

Validation keeps only summaries (that is what makes it fast); planning needs every resource's full,
validated spec. `load_specs` validates first (so any problem is reported exactly as `mlspec
validate` reports it, and planning never starts on invalid specs), then reads each file fully.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.errors import ProjectError, SpecError

if TYPE_CHECKING:
    from mlspec.graph import SpecGraph
    from mlspec.project import Project
    from mlspec.spec.diagnostics import Diagnostic
    from mlspec.spec.kinds.base import Envelope, Issue


@dataclass(frozen=True, slots=True)
class Resource:
    address: str
    envelope: Envelope
    file: str  # project-relative, as in diagnostics
    doc: int
    path: str = ""  # where to read the file

    @property
    def kind(self) -> str:
        return self.envelope.kind_name

    @property
    def name(self) -> str:
        return self.envelope.metadata.name

    def spec_data(self) -> dict[str, Any]:
        """The spec as plain JSON values, aliases as written (`schema`, `assert`)."""
        data: dict[str, Any] = self.envelope.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data

    def metadata_data(self) -> dict[str, Any]:
        return self.envelope.metadata.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True)
class SpecSet:
    project: Project
    resources: dict[str, Resource]
    graph: SpecGraph

    def __iter__(self) -> Iterator[Resource]:
        """In dependency order (upstream first; ties by address)."""
        return (self.resources[a] for a in self.graph.order())

    def __len__(self) -> int:
        return len(self.resources)


def issue_diagnostics(resource: Resource, issues: Iterable[Issue]) -> list[Diagnostic]:
    """A plugin's issues (field paths from the envelope root) as diagnostics with file:line:col."""
    from mlspec.spec.check import issue_diagnostic
    from mlspec.spec.loader import decode, load_text

    found = list(issues)
    if not found:
        return []
    with open(resource.path or resource.file, "rb") as fh:
        text, _ = decode(fh.read(), resource.file)
    doc = load_text(text or "", resource.file).documents[resource.doc]
    return [issue_diagnostic(doc, resource.file, issue.loc, issue) for issue in found]


def load_specs(root: Path | None = None) -> SpecSet:
    from mlspec.spec.loader import decode
    from mlspec.validation import validate

    report = validate(root, need_graph=True)
    if not report.ok:
        raise SpecError(report.errors)
    resources: dict[str, Resource] = {}
    for spec_file in report.files:
        with open(spec_file.path, "rb") as fh:
            text, _ = decode(fh.read(), spec_file.rel)
        found, diagnostics = read_resources(text or "", spec_file.rel)
        errors = [d for d in diagnostics if d.is_error]
        if errors:  # edited since validation a moment ago
            raise SpecError(errors)
        for doc, envelope in found:
            resources[envelope.address] = Resource(envelope.address, envelope, spec_file.rel, doc, spec_file.path)
    if set(resources) != set(report.graph.nodes):
        raise ProjectError("the specs changed while they were being read; run the command again")
    return SpecSet(report.project, resources, report.graph)


def read_resources(text: str, file: str) -> tuple[list[tuple[int, Envelope]], list[Diagnostic]]:
    """One spec file's resources (document index, typed resource) and every problem in it.

    The fast path first, as validation takes it (most files are plain, valid single documents);
    the full loader, with positions, for the rest. A document with an error yields no resource.
    """
    from mlspec.spec.check import check_document
    from mlspec.spec.loader import load_plain, load_text

    plain = load_plain(text)
    envelope = envelope_of(plain) if plain is not None else None
    if envelope is not None:
        return [(0, envelope)], []
    loaded = load_text(text, file)
    found: list[tuple[int, Envelope]] = []
    diagnostics = list(loaded.diagnostics)
    for doc in loaded.documents:
        checked = check_document(doc, file)
        diagnostics.extend(checked.diagnostics)
        if checked.resource is not None and not any(d.is_error for d in checked.diagnostics):
            found.append((doc.index, checked.resource))
    return found, diagnostics


def envelope_of(data: dict[str, Any]) -> Envelope | None:
    """The typed resource of data that validation has just accepted (so no semantic re-check)."""
    from pydantic import ValidationError

    from mlspec.spec.kinds import KINDS

    model = KINDS.get(data.get("kind"))  # type: ignore[arg-type]
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError:
        return None
