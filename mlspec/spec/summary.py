"""One spec file, reduced to what validation needs across files: the cacheable unit.

`summarize` is pure (bytes in, summary out), so its result can be cached by content digest and
computed in worker processes. A summary keeps each resource's address, its references and the facts
other specs check against, with positions, but not the parsed spec: linking needs no more.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic, format_field


@dataclass(frozen=True, slots=True)
class Site:
    """Where something is written: the field path and its position."""

    field: str
    line: int
    col: int
    width: int = 1


@dataclass(frozen=True, slots=True)
class RefUse:
    value: str
    kinds: tuple[str, ...]
    site: Site

    @property
    def field_name(self) -> str:
        """`spec.depends_on[0]` -> `depends_on`: how messages name the field."""
        return self.site.field.rsplit(".", 1)[-1].split("[", 1)[0]


@dataclass(frozen=True, slots=True)
class NeedUse:
    ref: str
    fact: str
    item: str
    forbidden: bool
    site: Site


@dataclass(frozen=True, slots=True)
class ResourceSummary:
    kind: str
    name: str
    doc: int
    site: Site  # metadata.name
    refs: tuple[RefUse, ...]
    needs: tuple[NeedUse, ...]
    facts: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def address(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True, slots=True)
class FileSummary:
    diagnostics: tuple[Diagnostic, ...]
    resources: tuple[ResourceSummary, ...]


def summarize(raw: bytes, rel: str) -> FileSummary:
    from mlspec.spec.check import check_document
    from mlspec.spec.kinds.base import iter_refs
    from mlspec.spec.loader import decode, load_text

    text, problem = decode(raw, rel)
    if problem is not None:
        return FileSummary((problem,), ())
    loaded = load_text(text or "", rel)
    diagnostics = list(loaded.diagnostics)
    resources = []
    for doc in loaded.documents:
        checked = check_document(doc, rel)
        diagnostics.extend(checked.diagnostics)
        resource = checked.resource
        if resource is None:
            continue

        def site(loc: tuple[str | int, ...], *, key: bool = False) -> Site:
            pos = doc.position(loc, key=key)  # noqa: B023 - used within this iteration
            return Site(format_field(loc), pos.line, pos.col, pos.width)

        refs = tuple(RefUse(r.value, r.kinds, site(r.loc)) for r in iter_refs(resource))
        needs = tuple(
            NeedUse(n.ref, n.fact, n.item, n.forbidden, site(("spec", *n.loc)))
            for n in resource.spec.needs()
        )
        facts = tuple((k, tuple(v)) for k, v in resource.spec.facts().items())
        resources.append(
            ResourceSummary(resource.kind_name, resource.metadata.name, doc.index,
                            site(("metadata", "name")), refs, needs, facts)  # fmt: skip
        )
    return FileSummary(tuple(diagnostics), tuple(resources))


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
    )  # fmt: skip
