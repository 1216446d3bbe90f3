"""Prompt templates: Jinja2 in a sandbox, read without being rendered.

`analyze` says what a template uses and where (line and column in the template), and what in it
cannot run: a syntax error, or an attribute the sandbox refuses (`__class__`, `__globals__`, `mro`,
...), so that `mlspec validate` reports them at the template's own line. `render` runs a template in
`ImmutableSandboxedEnvironment` with `StrictUndefined`: a template can neither reach Python's
internals nor change the values it is given, and a missing value is an error, never an empty string.

Pure, and cached by the template's text: a Prompt's versions are compiled once per process.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

# Attributes a template must never name, beyond every `_`-prefixed one: the ways out of a sandbox
# through frames and code objects (jinja2.sandbox refuses them at render; validate names them first).
UNSAFE_ATTRIBUTES = frozenset({
    "mro", "func_globals", "func_code", "func_closure", "gi_frame", "gi_code", "cr_frame", "cr_code", "ag_frame",
    "ag_code", "f_globals", "f_locals", "f_builtins", "f_back", "tb_frame", "tb_next",
})


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    col: int
    kind: str  # "syntax" or "unsafe"
    message: str
    hint: str | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    used: dict[str, tuple[int, int]]  # each variable the template reads -> where it first does
    problems: tuple[Problem, ...]


class TemplateError(Exception):
    """A template that cannot be rendered with these values: the message says which and why."""


@lru_cache(maxsize=1)
def environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def unsafe(name: str) -> bool:
    return name.startswith("_") or name in UNSAFE_ATTRIBUTES


@lru_cache(maxsize=512)
def analyze(text: str) -> Analysis:
    from jinja2 import TemplateSyntaxError, meta, nodes

    rows = text.split("\n")
    try:
        tree = environment().parse(text)
    except TemplateSyntaxError as err:
        line = max(1, int(err.lineno or 1))
        return Analysis({}, (Problem(line, _first_tag_col(rows, line), "syntax", f"template syntax: {err.message}"),))
    free = meta.find_undeclared_variables(tree)
    used: dict[str, tuple[int, int]] = {}
    for node in tree.find_all(nodes.Name):
        if node.ctx == "load" and node.name in free and node.name not in used:
            used[node.name] = (node.lineno, _col(rows, node.lineno, node.name))
    for name in sorted(free - set(used)):  # found by jinja2 but not as a Name node (none known): line 1
        used[name] = (1, 1)
    problems = [Problem(line, _col(rows, line, attr), "unsafe",
                        f"the template reaches for `{attr}`, which the sandbox refuses",
                        "templates read the values they are given; Python's internals are out of reach")
                for line, attr in _attributes(tree) if unsafe(attr)]
    ordered = tuple(sorted(problems, key=lambda p: (p.line, p.col)))
    return Analysis(dict(sorted(used.items(), key=lambda kv: kv[1])), ordered)


def _attributes(tree: Any) -> Iterator[tuple[int, str]]:
    """Every attribute a template names: `x.attr`, `x["attr"]`, `x|attr("attr")`."""
    from jinja2 import nodes

    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Getattr):
            yield node.lineno, node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            yield node.lineno, node.arg.value
        elif isinstance(node, nodes.Filter) and node.name == "attr" and node.args:
            first = node.args[0]
            if isinstance(first, nodes.Const) and isinstance(first.value, str):
                yield node.lineno, first.value


def _col(rows: list[str], line: int, name: str) -> int:
    row = rows[line - 1] if 0 < line <= len(rows) else ""
    found = re.search(rf"(?<![\w.]){re.escape(name)}\b", row) or re.search(re.escape(name), row)
    return found.start() + 1 if found else 1


def _first_tag_col(rows: list[str], line: int) -> int:
    row = rows[line - 1] if 0 < line <= len(rows) else ""
    found = re.search(r"\{[{%#]", row)
    return found.start() + 1 if found else 1


@lru_cache(maxsize=512)
def compiled(text: str) -> Any:
    return environment().from_string(text)


def render(text: str, values: Mapping[str, Any]) -> str:
    """`text` rendered with `values`; TemplateError (never a traceback) for what the template cannot do."""
    from jinja2 import TemplateError as JinjaError
    from jinja2.exceptions import SecurityError, UndefinedError

    try:
        return str(compiled(text).render(values))
    except SecurityError as err:
        raise TemplateError(f"the sandbox refused: {err}") from None
    except UndefinedError as err:
        raise TemplateError(f"the template needs a value it was not given: {err}") from None
    except JinjaError as err:
        raise TemplateError(f"the template cannot be rendered: {err}") from None
    except RecursionError:
        raise TemplateError("the template recurses without end (a macro that calls itself?)") from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as err:  # an operation on a value of the wrong type
        raise TemplateError(f"the template failed on its values: {type(err).__name__}: {err}") from None


def version_digest(template: str, variables: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    """A prompt version's identity: its template, its variables (types and defaults) and its model
    settings. The same three give the same version, wherever and whenever they are applied."""
    canonical = json.dumps({"template": template, "variables": variables, "settings": settings}, sort_keys=True,
                           separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "int": (int,), "float": (int, float), "bool": (bool,),
                                      "list": (list, tuple), "object": (dict,)}


def type_problem(kind: str, value: Any) -> str | None:
    """Why `value` is not of the declared variable type `kind`, or None. (A bool is no number here.)"""
    allowed = TYPES[kind]
    if isinstance(value, bool) and bool not in allowed:
        return f"expected {kind}, got a boolean"
    if not isinstance(value, allowed):
        return f"expected {kind}, got {type(value).__name__} {str(value)[:40]!r}"
    return None


def bind(declared: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a render gets: `values` checked against the declarations, defaults filled in. Every
    problem is named in one TemplateError: missing, of the wrong type, or not declared at all."""
    from mlspec.spec.suggest import did_you_mean

    problems, bound = [], {}
    for name, value in values.items():
        if name not in declared:
            hint = did_you_mean(name, sorted(declared))
            problems.append(f"`{name}` is not a variable of this prompt" + (f" ({hint})" if hint else ""))
            continue
        wrong = type_problem(str(declared[name].get("type", "string")), value)
        if wrong:
            problems.append(f"`{name}`: {wrong}")
        bound[name] = value
    for name, spec in declared.items():
        if name in bound:
            continue
        if spec.get("default") is not None:
            bound[name] = spec["default"]
        elif spec.get("required", True):
            problems.append(f"`{name}` is required and was not given")
        else:
            bound[name] = None
    if problems:
        raise TemplateError("; ".join(problems))
    return bound
