"""Checking one document against its kind: envelope, schema (pydantic), then semantic rules.

Pydantic reports errors by `loc` in the validated data; users think in file:line:col and in the
words of their spec. This module is the translation: each error gets the position from the loader's
node tree, a stable code, what was expected, and a did-you-mean where one is likely.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic, format_field
from mlspec.spec.kinds import API_VERSION, KINDS, Envelope
from mlspec.spec.kinds.base import NAME_RE, Issue, Loc, RefSite, inspect
from mlspec.spec.loader import Document
from mlspec.spec.suggest import closest, did_you_mean

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_RANGE_WORDS = {
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
    "too_short": "at least {min_length} item(s)",
    "too_long": "at most {max_length} item(s)",
    "string_too_short": "at least {min_length} character(s)",
    "string_too_long": "at most {max_length} character(s)",
    "string_pattern_mismatch": "text matching {pattern}",
}
_QUOTED = re.compile(r"'([^']*)'")


@dataclass(frozen=True, slots=True)
class Checked:
    resource: Envelope | None
    diagnostics: list[Diagnostic]


MAX_PER_DOCUMENT = 200  # diagnostics shown per document; past this, a count (MLS108)


def check_document(doc: Document, file: str) -> Checked:
    data = doc.data
    envelope = _check_envelope(doc, file)
    if envelope:
        return Checked(None, envelope)
    model_cls = KINDS[data["kind"]]
    try:
        resource = model_cls.model_validate(data)
    except ValidationError as err:
        schema = list(islice(_translate(err, doc, file, model_cls), MAX_PER_DOCUMENT))
        if err.error_count() > MAX_PER_DOCUMENT:  # hostile or broken input: bounded work, the count still told
            rest = err.error_count() - MAX_PER_DOCUMENT
            schema.append(Diagnostic(codes.TOO_MANY_PROBLEMS, f"and {rest:,} more problems in this document, not shown",
                                     file, schema[-1].line, schema[-1].col, hint="fix those above and validate again"))
            return Checked(None, schema)
        return Checked(None, schema + _issues_of_valid_blocks(doc, file, model_cls, schema))
    diagnostics = [issue_diagnostic(doc, file, loc, issue) for loc, issue in _issues(resource)]
    return Checked(None if diagnostics else resource, diagnostics)


def _issues_of_valid_blocks(
    doc: Document, file: str, model_cls: type[BaseModel], schema_errors: list[Diagnostic]
) -> list[Diagnostic]:
    """Semantic checks of the spec's blocks that are valid on their own, when the whole is not.

    So a typo in `hyperparameters` and a bad gate in `evaluation` show in the same pass.
    """
    spec = doc.data.get("spec")
    spec_field = model_cls.model_fields.get("spec")
    if not isinstance(spec, dict) or spec_field is None:
        return []
    broken = {d.field.split(".")[1].split("[")[0] for d in schema_errors if d.field and d.field.startswith("spec.")}
    if any(d.field in (None, "spec") for d in schema_errors if d.code != codes.UNKNOWN_FIELD):
        broken.add("*")  # the spec as a whole is wrong: its blocks are not worth checking
    out: list[Diagnostic] = []
    for name, info in getattr(spec_field.annotation, "model_fields", {}).items():
        key = info.alias or name
        block_cls = info.annotation
        if key in broken or "*" in broken or key not in spec or not isinstance(spec[key], dict):
            continue
        if not (isinstance(block_cls, type) and issubclass(block_cls, BaseModel)):
            continue
        try:
            block = block_cls.model_validate(spec[key])
        except ValidationError:
            continue
        out.extend(issue_diagnostic(doc, file, ("spec", key, *loc), issue) for loc, issue in _issues(block))
    return out


def quick_check(data: dict[str, Any]) -> tuple[Envelope, list[RefSite]] | None:
    """The resource and its references, if `data` is a valid spec with no issue at all; None if
    anything is wrong. For the fast path: a None sends the file through `check_document`."""
    kind = data.get("kind")
    if data.get("apiVersion") != API_VERSION or not isinstance(kind, str) or kind not in KINDS:
        return None
    try:
        resource = KINDS[kind].model_validate(data)
    except ValidationError:
        return None
    issues, refs = inspect(resource)
    return None if issues else (resource, refs)


M = TypeVar("M", bound=BaseModel)


def translate_model(model_cls: type[M], doc: Document, file: str) -> tuple[M | None, list[Diagnostic]]:
    """Validate a whole document against `model_cls` (used for mlspec.yaml)."""
    try:
        return model_cls.model_validate(doc.data), []
    except ValidationError as err:
        return None, list(_translate(err, doc, file, model_cls))


def _check_envelope(doc: Document, file: str) -> list[Diagnostic]:
    data: dict[str, Any] = doc.data
    out: list[Diagnostic] = []
    version = data.get("apiVersion")
    if version != API_VERSION:
        found = "missing" if version is None else f"{_describe(version)} is not supported"
        hint = None
        if isinstance(version, str) and re.fullmatch(r"mlspec/v1(?:alpha|beta)\d*|mlspec/v0[\w.]*", version):
            hint = f"this mlspec reads {API_VERSION}; `mlspec migrate` converts older specs"
        elif isinstance(version, str) and version.startswith("mlspec/"):
            hint = f"this mlspec reads {API_VERSION}; is a newer mlspec needed for `{version}`?"
        typo = closest("apiVersion", data) if version is None else None
        if typo not in (None, "apiVersion"):
            hint = f"`{typo}` should be spelt `apiVersion`"
        out.append(_at(doc, file, (typo,) if hint and typo else ("apiVersion",), codes.UNKNOWN_API_VERSION,
                       f"apiVersion {found}", expected=API_VERSION, hint=hint or f"add `apiVersion: {API_VERSION}`",
                       key=version is None))
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        if kind is None:
            message, hint = "kind missing", "add `kind:` with one of the kinds"
        elif not isinstance(kind, str):
            message, hint = f"kind must be a string, got {_describe(kind)}", None
        else:
            message, hint = f"unknown kind `{kind}`", did_you_mean(kind, KINDS)
        out.append(_at(doc, file, ("kind",), codes.UNKNOWN_KIND, message,
                       expected=", ".join(KINDS), hint=hint, key=kind is None))
    return out


def _issues(resource: BaseModel) -> list[tuple[Loc, Issue]]:
    return inspect(resource)[0]


def issue_diagnostic(doc: Document, file: str, loc: Loc, issue: Issue) -> Diagnostic:
    if issue.at is not None:
        pos = doc.inside(loc, *issue.at)
        return Diagnostic(issue.code, issue.message, file, pos.line, pos.col, field=format_field(loc) or None,
                          expected=issue.expected, hint=issue.hint, doc=doc.index)
    return _at(doc, file, loc, issue.code, issue.message, expected=issue.expected, hint=issue.hint)


def _translate(
    err: ValidationError, doc: Document, file: str, model_cls: type[BaseModel]
) -> Iterator[Diagnostic]:
    """Pydantic errors -> diagnostics, one per place, with union branches folded together."""
    plain: list[tuple[Loc, dict[str, Any]]] = []
    unions: dict[Loc, list[tuple[Loc, dict[str, Any]]]] = {}
    errors: list[dict[str, Any]] = [dict(e) for e in err.errors(include_url=False)]
    for error in errors:
        loc, union_base = _document_loc(doc.data, error["loc"], error["type"])
        if union_base is None:
            plain.append((loc, error))
        else:
            unions.setdefault(union_base, []).append((loc, error))
    for base, branch_errors in unions.items():
        deeper = [(loc, e) for loc, e in branch_errors if len(loc) > len(base) or e["type"] == "missing"]
        if deeper:  # the value's shape picked a branch: report that branch's own errors
            plain.extend(deeper)
            continue
        wanted = dict.fromkeys(_expected_words(e) for _, e in branch_errors)
        first = branch_errors[0][1]
        yield _at(doc, file, base, codes.WRONG_TYPE, f"expected {' or '.join(wanted)}, got {_describe(first['input'])}",
                  expected=" or ".join(wanted), hint=_env_hint(first["input"]))
    # A misspelt key is both "unknown `spce`" and "missing `spec`": say it once, at the typo.
    misspelt = {
        (loc[:-1], _suggested(model_cls, loc)) for loc, e in plain if e["type"] == "extra_forbidden"
    }
    seen: set[tuple[Loc, str]] = set()
    for loc, error in plain:
        if error["type"] == "missing" and (loc[:-1], loc[-1]) in misspelt:
            continue
        if (loc, error["type"]) not in seen:
            seen.add((loc, error["type"]))
            yield _diagnostic(doc, file, loc, error, model_cls)


def _suggested(model_cls: type[BaseModel], loc: Loc) -> str | None:
    return closest(str(loc[-1]), _fields_at(model_cls, loc[:-1]))


def _document_loc(data: Any, loc: tuple[Any, ...], error_type: str) -> tuple[Loc, Loc | None]:
    """Drop the union-branch labels pydantic puts in `loc` (`'list[str]'`, `'OutputDep'`).

    A part that is not in the data is a branch label, except the last part of a `missing` error.
    Returns the location in the document and, when a label was dropped, where the union sits.
    """
    out: list[str | int] = []
    union_base: Loc | None = None
    current = data
    for i, part in enumerate(loc):
        if _has(current, part):
            current = current[part]
            out.append(part)
        elif i == len(loc) - 1 and error_type == "missing":
            out.append(part)
        elif union_base is None:
            union_base = tuple(out)
    return tuple(out), union_base


def _has(container: Any, part: Any) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _diagnostic(
    doc: Document, file: str, loc: Loc, error: dict[str, Any], model_cls: type[BaseModel]
) -> Diagnostic:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    field = next((p for p in reversed(loc) if isinstance(p, str)), "")  # `metrics`, not `1`
    if kind == "missing":
        return _at(doc, file, loc, codes.MISSING_FIELD, f"missing required field `{field}`",
                   expected=f"`{field}:` under {format_field(loc[:-1]) or 'the document'}",
                   position_loc=loc[:-1], key=True)
    if kind == "extra_forbidden":
        allowed = sorted(_fields_at(model_cls, loc[:-1]))
        return _at(doc, file, loc, codes.UNKNOWN_FIELD, f"unknown field `{field}`",
                   expected=f"one of {', '.join(allowed)}" if allowed else None,
                   hint=did_you_mean(str(field), allowed), key=True)
    if kind in ("literal_error", "enum"):
        options = _QUOTED.findall(str(ctx.get("expected", "")))
        return _at(doc, file, loc, codes.INVALID_CHOICE, f"`{value}` is not a valid `{field}`",
                   expected=f"one of {', '.join(options)}",
                   hint=did_you_mean(str(value), options) if isinstance(value, str) else None)
    if kind == "string_pattern_mismatch" and loc != ("metadata", "name"):
        return _at(doc, file, loc, codes.OUT_OF_RANGE, f"{_describe(value)} is not a valid `{field}`",
                   expected=f"text matching {ctx.get('pattern')}")
    if kind == "string_pattern_mismatch":
        return _at(doc, file, loc, codes.INVALID_NAME, f"`{value}` is not a valid name",
                   expected="a lowercase DNS label: a-z, 0-9 and -, starting and ending alphanumeric, at most 63",
                   hint=_name_hint(value))
    if kind in _TYPE_WORDS:
        return _at(doc, file, loc, codes.WRONG_TYPE, f"expected {_TYPE_WORDS[kind]}, got {_describe(value)}",
                   expected=_TYPE_WORDS[kind], hint=_env_hint(value))
    if kind in _RANGE_WORDS:
        wanted = _RANGE_WORDS[kind].format(**ctx)
        return _at(doc, file, loc, codes.OUT_OF_RANGE, f"{_describe(value)} is out of range for `{field}`",
                   expected=wanted)
    message = str(ctx.get("error") or error.get("msg") or "invalid value")
    return _at(doc, file, loc, codes.INVALID_VALUE, message.removeprefix("Value error, "))


def _at(
    doc: Document,
    file: str,
    loc: Loc,
    code: str,
    message: str,
    *,
    expected: str | None = None,
    hint: str | None = None,
    key: bool = False,
    position_loc: Loc | None = None,
) -> Diagnostic:
    pos = doc.position(loc if position_loc is None else position_loc, key=key)
    return Diagnostic(
        code, message, file, pos.line, pos.col, field=format_field(loc) or None,
        expected=expected, hint=hint, doc=doc.index, width=pos.width,
    )


def _expected_words(error: dict[str, Any]) -> str:
    if error["type"] in _TYPE_WORDS:
        return _TYPE_WORDS[error["type"]]
    return str(error.get("msg", "a valid value")).lower()


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"`{value}`"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string `{shown}`"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _env_hint(value: Any) -> str | None:
    if isinstance(value, str) and "${env:" in value:
        return "${env:...} references are only allowed in string fields"
    if isinstance(value, str) and value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return "remove the quotes to write a number"
    return None


def _name_hint(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    slug = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:63].strip("-")
    return f"try `{slug}`" if slug and NAME_RE.fullmatch(slug) else None


def _fields_at(model_cls: type[BaseModel], loc: Loc) -> set[str]:
    """The keys the model at `loc` accepts (for 'did you mean' on unknown fields)."""
    candidates: list[Any] = [model_cls]
    for part in loc:
        nxt: list[Any] = []
        for tp in candidates:
            for inner in _unwrap(tp):
                if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(part, str):
                    for name, info in inner.model_fields.items():
                        if (info.alias or name) == part:
                            nxt.append(info.annotation)
                elif get_origin(inner) is list and isinstance(part, int):
                    nxt.extend(get_args(inner)[:1])
                elif get_origin(inner) is dict:
                    nxt.extend(get_args(inner)[1:2])
        candidates = nxt
    names: set[str] = set()
    for tp in candidates:
        for inner in _unwrap(tp):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                names.update(info.alias or name for name, info in inner.model_fields.items())
    return names


def _unwrap(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Union or type(tp).__name__ == "UnionType":
        return [inner for arg in get_args(tp) for inner in _unwrap(arg)]
    if type(tp).__name__ == "_AnnotatedAlias":
        return _unwrap(get_args(tp)[0])
    return [tp]
