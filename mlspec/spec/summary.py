"""One spec file, reduced to what validation needs across files: the cacheable unit.

`summarize` is pure (bytes in, summary out), so its result can be cached by content digest and
computed in worker processes. A summary keeps each resource's address, its references and the facts
other specs check against, each with its field path (`loc`), but not positions: positions are only
needed for the rare reference that is wrong, and are then found by re-reading that one file.

The types are NamedTuples, not dataclasses: the parse cache unpickles ~15 of them per file, and a
frozen slotted dataclass goes through a Python-level __setstate__ each time (2.5 s for 10k files,
against ~0.1 s for tuples).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic

if TYPE_CHECKING:
    from mlspec.spec.kinds.base import Envelope, RefSite

Loc = tuple[str | int, ...]
NAME_LOC: Loc = ("metadata", "name")


class RefUse(NamedTuple):
    value: str
    kinds: tuple[str, ...]
    loc: Loc

    @property
    def field_name(self) -> str:
        """How messages name the field: the last key of its path (`depends_on`, `dataset`)."""
        return next(str(p) for p in reversed(self.loc) if isinstance(p, str))


class NeedUse(NamedTuple):
    ref: str
    fact: str
    item: str
    forbidden: bool
    loc: Loc


class ResourceSummary(NamedTuple):
    kind: str
    name: str
    doc: int
    refs: tuple[RefUse, ...]
    needs: tuple[NeedUse, ...]
    facts: tuple[tuple[str, tuple[str, ...]], ...]
    owner: str | None = None  # what the policies of mlspec.yaml check
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"

    def export(self) -> tuple[str, str, int, tuple[tuple[str, tuple[str, ...]], ...]]:
        """What other files can see of this resource: its address and facts (not its refs)."""
        return (self.kind, self.name, self.doc, self.facts)


class FileSummary(NamedTuple):
    diagnostics: tuple[Diagnostic, ...]
    resources: tuple[ResourceSummary, ...]

    def exports(self) -> tuple[tuple[str, str, int, tuple[tuple[str, tuple[str, ...]], ...]], ...]:
        return tuple(r.export() for r in self.resources)

    def ref_signature(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The references as written, without positions: if unchanged, the graph's edges are too."""
        return tuple((ref.value, ref.kinds) for r in self.resources for ref in r.refs)


def summarize(raw: bytes, rel: str) -> FileSummary:
    from mlspec.spec.check import check_document, quick_check
    from mlspec.spec.kinds.base import iter_refs
    from mlspec.spec.loader import decode, load_plain, load_text

    text, problem = decode(raw, rel)
    if problem is not None:
        return FileSummary((problem,), ())
    plain = load_plain(text or "")
    if plain is not None:
        quick = quick_check(plain)
        if quick is not None:  # the common case: one valid document, no positions needed
            return FileSummary((), (_resource_summary(quick[0], 0, quick[1]),))
    loaded = load_text(text or "", rel)
    diagnostics = list(loaded.diagnostics)
    resources = []
    for doc in loaded.documents:
        checked = check_document(doc, rel)
        diagnostics.extend(checked.diagnostics)
        resource = checked.resource
        if resource is None:
            placeholder = _declared(doc.data, doc.index)
            if placeholder is not None:  # still declared: references to it must not read as dangling
                resources.append(placeholder)
            continue
        resources.append(_resource_summary(resource, doc.index, list(iter_refs(resource))))
    return FileSummary(tuple(diagnostics), tuple(resources))


def _resource_summary(resource: Envelope, doc: int, refs: list[RefSite]) -> ResourceSummary:
    spec = resource.spec
    return ResourceSummary(
        resource.kind_name,
        resource.metadata.name,
        doc,
        tuple(RefUse(r.value, r.kinds, r.loc) for r in refs),
        tuple(NeedUse(n.ref, n.fact, n.item, n.forbidden, ("spec", *n.loc)) for n in spec.needs()),
        tuple((k, tuple(v)) for k, v in spec.facts().items()),
        resource.metadata.owner,
        tuple(sorted(resource.metadata.labels.items())),
    )


def _declared(data: object, doc: int) -> ResourceSummary | None:
    """The address an invalid document declares, if its kind and name are themselves valid.

    It joins the graph with no references and no facts: enough for duplicates and for references
    to it, while checks that need its contents wait until its own errors are fixed.
    """
    from mlspec.spec.vocabulary import DNS_LABEL, KIND_NAMES

    if not isinstance(data, dict) or data.get("kind") not in KIND_NAMES:
        return None
    metadata = data.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or re.fullmatch(DNS_LABEL, name) is None:
        return None
    return ResourceSummary(str(data["kind"]), name, doc, (), (), ())


def unreadable(rel: str, reason: str) -> FileSummary:
    return FileSummary((Diagnostic(codes.FILE_UNREADABLE, f"cannot read file: {reason}", rel),), ())


def too_large(rel: str, size: int, limit: int) -> FileSummary:
    return FileSummary(
        (
            Diagnostic(
                codes.FILE_TOO_LARGE, f"file is {size:,} bytes, over the {limit:,}-byte limit", rel, 1, 1,
                hint="split it, or raise limits.max_file_bytes in mlspec.yaml",
            ),
        ),
        (),
    )

