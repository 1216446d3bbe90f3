"""What every kind shares: the envelope, metadata, references and semantic issues.

References are plain strings in YAML (`dataset: reviews` or `dataset: Dataset/reviews`); the kinds
a field may point to are declared on its type with `Ref("Dataset")`, so the linker, the JSON Schema
(`x-mlspec-ref`) and the docs all read them from one place.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    WithJsonSchema,
)

from mlspec.spec import codes
from mlspec.spec.vocabulary import API_VERSION, DNS_LABEL, KIND_NAMES

__all__ = ["API_VERSION", "KIND_NAMES"]

NAME_RE = re.compile(DNS_LABEL)
_REF_LOOSE = rf"^(?:[A-Za-z]+/)?{DNS_LABEL}$"  # kind checked by the linker, with a better message

Loc = tuple[str | int, ...]


class Strict(BaseModel):
    """Every spec model: unknown fields are errors (that is how typos get a did-you-mean)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False, defer_build=True, strict=True)


@dataclass(frozen=True, slots=True)
class RefTarget:
    kinds: tuple[str, ...]


def Ref(*kinds: str) -> Any:
    """A string that names a resource of one of `kinds` (all kinds when none are given)."""
    allowed = kinds or KIND_NAMES
    strict = rf"^(?:(?:{'|'.join(allowed)})/)?{DNS_LABEL}$"
    return Annotated[
        str,
        StringConstraints(pattern=_REF_LOOSE),
        RefTarget(tuple(allowed)),
        WithJsonSchema(
            {
                "type": "string",
                "pattern": strict,
                "x-mlspec-ref": list(allowed),
                "description": f"name of a {' or '.join(allowed)} (or Kind/name)",
            }
        ),
    ]


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_FREEFORM_DEPTH:
            raise ValueError(f"nested deeper than {MAX_FREEFORM_DEPTH} levels")
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return value


MAX_FREEFORM_DEPTH = 32
# Free-form settings (a family's config, a task's params): JSON values only, never dates or
# non-string keys, so every YAML parser that accepts them yields the same data.
FreeForm = Annotated[dict[str, JsonValue], AfterValidator(_shallow)]

Name = Annotated[
    str,
    StringConstraints(pattern=rf"^{DNS_LABEL}$"),
    Field(description="lowercase DNS label: a-z, 0-9 and -, at most 63 characters"),
]
EnvStr = Annotated[
    str,
    Field(description="a value or ${env:NAME}; env values are sensitive and never stored or printed"),
]


@dataclass(frozen=True, slots=True)
class Issue:
    """A semantic problem found by a model's `issues()`; `loc` is relative to that model."""

    loc: Loc
    message: str
    code: str = codes.INVALID_VALUE
    expected: str | None = None
    hint: str | None = None
    at: tuple[int, int] | None = None  # (line, col) inside the string at `loc`: a template's own position


@dataclass(frozen=True, slots=True)
class Need:
    """A fact this spec expects of a resource it references (a Model needs its Dataset's `train` split).

    `fact` names a list the target exports through `facts()`; with `forbidden`, `item` must be absent.
    Checked by the linker when the target exports the fact at all.
    """

    loc: Loc
    ref: str
    fact: str
    item: str
    forbidden: bool = False


class Lifecycle(Strict):
    prevent_destroy: bool = Field(False, description="fail any plan that would delete or replace this resource")
    create_before_destroy: bool | None = Field(
        None, description="on replace, create the new one before destroying the old (default for Service)"
    )


class SpecBase(Strict):
    """Fields every kind's spec accepts."""

    description: str | None = None
    depends_on: list[Ref()] = Field(  # type: ignore[valid-type]
        default_factory=list, description="explicit dependencies beyond the references in the spec"
    )
    lifecycle: Lifecycle | None = None

    def issues(self) -> Iterator[Issue]:
        """Semantic checks beyond types. Overridden per model; yields nothing by default."""
        return iter(())

    def facts(self) -> dict[str, list[str]]:
        """Lists other specs may check against (`splits`, `columns`): see `Need`."""
        return {}

    def needs(self) -> Iterator[Need]:
        return iter(())


class Metadata(Strict):
    name: Name
    owner: str | None = Field(None, description="team or person accountable for the resource")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


class Envelope(Strict):
    """`apiVersion`, `kind`, `metadata`, `spec`: the Kubernetes-style shape of every document."""

    kind_name: ClassVar[str]
    api_version: Literal["mlspec/v1"] = Field(alias="apiVersion")
    metadata: Metadata
    spec: Any

    @property
    def address(self) -> str:
        return f"{self.kind_name}/{self.metadata.name}"


@dataclass(frozen=True, slots=True)
class RefSite:
    loc: Loc
    value: str
    kinds: tuple[str, ...]


def iter_refs(model: BaseModel, loc: Loc = ()) -> Iterator[RefSite]:
    """Every reference in `model`, with where it is written and which kinds it may name."""
    return iter(inspect(model, loc)[1])


def inspect(model: BaseModel, loc: Loc = ()) -> tuple[list[tuple[Loc, Issue]], list[RefSite]]:
    """Semantic issues and references of `model` and every model nested in it, in one pass.

    The hot loop of validation (once per resource): iterative, visiting only fields that can hold
    checks or references, and reading values from `__dict__` (pydantic's getattr is slower).
    """
    issues: list[tuple[Loc, Issue]] = []
    refs: list[RefSite] = []
    stack: list[tuple[Loc, Any]] = [(loc, model)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, BaseModel):
            cls = type(value)
            fields = value.__dict__
            method = _issues_method(cls)
            if method is not None:
                issues.extend(((*here, *issue.loc), issue) for issue in method(value))
            for attr, key, kinds in _ref_fields(cls):
                ref = fields[attr]
                if isinstance(ref, str):
                    refs.append(RefSite((*here, key), ref, kinds))
                elif isinstance(ref, list):
                    refs.extend(RefSite((*here, key, i), r, kinds) for i, r in enumerate(ref) if isinstance(r, str))
            stack.extend(((*here, key), fields[attr]) for attr, key in reversed(_model_fields(cls)))
        elif isinstance(value, list):
            stack.extend(((*here, i), v) for i, v in reversed(list(enumerate(value))) if not _scalar(v))
        elif isinstance(value, dict):
            stack.extend(((*here, k), v) for k, v in reversed(list(value.items())) if not _scalar(v))
    return issues, refs


def _scalar(value: Any) -> bool:
    return not isinstance(value, BaseModel | list | dict)


@cache
def _issues_method(cls: type[BaseModel]) -> Any:
    return getattr(cls, "issues", None) if "issues" in _overrides(cls) else None


@cache
def _model_fields(cls: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """Fields that may hold a model with checks or references: the walk visits nothing else."""
    return tuple(
        (name, info.alias or name)
        for name, info in cls.model_fields.items()
        if any(_relevant(m) for m in _models_in(info.annotation))
    )


def _relevant(cls: type[BaseModel], seen: frozenset[type] = frozenset()) -> bool:
    """Whether `cls`, or a model nested in it, has semantic checks or references."""
    if cls in seen:
        return False
    if "issues" in _overrides(cls) or "needs" in _overrides(cls) or _ref_fields(cls):
        return True
    return any(
        _relevant(m, seen | {cls}) for info in cls.model_fields.values() for m in _models_in(info.annotation)
    )


@cache
def _overrides(cls: type[BaseModel]) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass in (SpecBase, Strict, BaseModel):
            break
        names.update(k for k in ("issues", "needs", "facts") if k in vars(klass))
    return frozenset(names)


@cache
def _ref_fields(cls: type[BaseModel]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    out = []
    for name, info in cls.model_fields.items():
        kinds = _ref_kinds(info.annotation, tuple(info.metadata))
        if kinds:
            out.append((name, info.alias or name, kinds))
    return tuple(out)


def _ref_kinds(annotation: Any, metadata: tuple[Any, ...] = ()) -> tuple[str, ...]:
    for meta in metadata:
        if isinstance(meta, RefTarget):
            return meta.kinds
    origin = get_origin(annotation)
    if origin is Annotated:
        return _ref_kinds(get_args(annotation)[0], annotation.__metadata__)
    if origin in (list, Union) or str(origin) == "<class 'types.UnionType'>":
        for arg in get_args(annotation):
            kinds = _ref_kinds(arg)
            if kinds:
                return kinds
    return ()


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type):
        return [annotation] if issubclass(annotation, BaseModel) else []
    return [m for arg in get_args(annotation) for m in _models_in(arg)]
