"""Assertions on one output, in promptfoo's terms (https://promptfoo.dev/docs/configuration/expected-outputs/):
each gives pass or fail, a score in [0, 1] and, when it fails, why. Pure, except `python`, which calls
a function of the spec repo. A test passes when its weighted score reaches its threshold (every
assertion, by default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Outcome:
    passed: bool
    score: float
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """What a target gave for one rendered prompt: its text, how long it took, and the whole
    response (a Service's prediction, a chat completion) for `python` checks."""

    output: str
    latency_ms: float
    raw: Any = None


def check(kind: str, value: Any, threshold: float | None, answer: Answer, context: Mapping[str, Any],
          call: Callable[[str], Callable[..., Any]]) -> Outcome:
    """One assertion; `not-` inverts the verdict. `call` finds a `python` assertion's function."""
    negated = kind.startswith("not-")
    base = kind.removeprefix("not-")
    found = _BASE[base](value, threshold, answer, context, call)
    if not negated:
        return found
    return Outcome(not found.passed, 1.0 - found.score,
                   "" if not found.passed else f"expected not {base} {_show(value)}, and it was")


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _verdict(ok: bool, why: str) -> Outcome:
    return Outcome(ok, 1.0 if ok else 0.0, "" if ok else why)


def _equals(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    return _verdict(a.output.strip() == str(value).strip(), f"expected {_show(value)}, got {_show(a.output)}")


def _contains(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    return _verdict(str(value) in a.output, f"expected it to contain {_show(value)}")


def _icontains(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    return _verdict(str(value).lower() in a.output.lower(), f"expected it to contain {_show(value)} (any case)")


def _many(fold: bool, need_all: bool) -> Callable[..., Outcome]:
    def run(value: Sequence[str], _t: float | None, a: Answer, *_: Any) -> Outcome:
        text = a.output.lower() if fold else a.output
        hits = [v for v in value if (v.lower() if fold else v) in text]
        ok = len(hits) == len(value) if need_all else bool(hits)
        return _verdict(ok, f"expected {'all' if need_all else 'one'} of {_show(list(value))}"
                            + (f"; found only {_show(hits)}" if need_all and hits else ""))
    return run


def _regex(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    return _verdict(re.search(str(value), a.output) is not None, f"expected a match for /{value}/")


def _starts_with(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    return _verdict(a.output.startswith(str(value)), f"expected it to start with {_show(value)}")


def _is_json(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    try:
        data = json.loads(a.output)
    except json.JSONDecodeError as err:
        return Outcome(False, 0.0, f"the output is not JSON ({err.msg} at character {err.pos})")
    if value is None:
        return Outcome(True, 1.0)
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    errors = sorted(Draft202012Validator(value).iter_errors(data), key=lambda e: list(e.path))
    if not errors:
        return Outcome(True, 1.0)
    first = errors[0]
    where = "/".join(str(p) for p in first.path) or "the document"
    return Outcome(False, 0.0, f"JSON, but not of the schema: {where}: {first.message}")


def _max_length(value: Any, _t: float | None, a: Answer, *_: Any) -> Outcome:
    return _verdict(len(a.output) <= int(value), f"{len(a.output)} characters, more than {value}")


def _latency(value: Any, threshold: float | None, a: Answer, *_: Any) -> Outcome:
    limit = float(threshold if threshold is not None else value)
    return _verdict(a.latency_ms <= limit, f"took {a.latency_ms:.0f} ms, more than {limit:g} ms")


def _python(value: Any, _t: float | None, a: Answer, context: Mapping[str, Any],
            call: Callable[[str], Callable[..., Any]]) -> Outcome:
    """The function gets (output, context) as promptfoo's do, and returns a bool, a score in [0, 1]
    (passing from 0.5), or {pass, score, reason}."""
    function = call(str(value))
    try:
        found = function(a.output, {**context, "raw": a.raw, "latency_ms": a.latency_ms})
    except Exception as err:
        return Outcome(False, 0.0, f"{value} raised {type(err).__name__}: {err}")
    if isinstance(found, bool):
        return _verdict(found, f"{value} returned False")
    if isinstance(found, (int, float)):
        score = max(0.0, min(1.0, float(found)))
        return Outcome(score >= 0.5, score, "" if score >= 0.5 else f"{value} scored {score:g}")
    if isinstance(found, Mapping) and "pass" in found:
        ok = bool(found["pass"])
        return Outcome(ok, float(found.get("score", 1.0 if ok else 0.0)), str(found.get("reason") or ""))
    return Outcome(False, 0.0, f"{value} returned {type(found).__name__}; expected a bool, a score or "
                               "{pass, score, reason}")


_BASE: dict[str, Callable[..., Outcome]] = {
    "equals": _equals, "contains": _contains, "icontains": _icontains,
    "contains-any": _many(False, False), "contains-all": _many(False, True),
    "icontains-any": _many(True, False), "icontains-all": _many(True, True),
    "regex": _regex, "starts-with": _starts_with, "is-json": _is_json, "max-length": _max_length,
    "latency": _latency, "python": _python,
}


def scored(outcomes: Sequence[tuple[Outcome, float]], threshold: float | None) -> tuple[bool, float]:
    """A test's verdict from its assertions' (outcome, weight): every one must pass, or, with a
    threshold, the weighted score must reach it (promptfoo's rule)."""
    total = sum(w for _, w in outcomes)
    score = sum(o.score * w for o, w in outcomes) / total if total else 1.0
    if threshold is None:
        return all(o.passed for o, w in outcomes if w > 0 or total == 0), score
    return score >= threshold, score
