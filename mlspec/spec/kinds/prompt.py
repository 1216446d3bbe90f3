"""Prompt: a versioned Jinja2 template with typed variables, model settings, tests with assertions
(promptfoo's vocabulary), a pass-rate gate, and aliases in the registry.

Everything that can be known from the spec alone is checked here, at `mlspec validate`: the template's
syntax, variables used but not declared or declared but not used, attributes the sandbox refuses,
and test values of the wrong type, each at its own line (inside the template for an inline one). A
`template_file` is read and checked by the plugin at plan time.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

from pydantic import Field

from mlspec.spec import codes
from mlspec.spec.kinds.base import Envelope, EnvStr, FreeForm, Issue, Ref, SpecBase, Strict

VARIABLE_NAME = r"^[A-Za-z_]\w*$"
RESERVED = frozenset({"alias", "key", "root", "ttl_s"})  # render(name, /, alias, *, key, root, ttl_s, **variables)
# promptfoo's assertion types that fit a single output; each also negated with `not-`
ASSERTION_TYPES = ("equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any",
                   "icontains-all", "regex", "starts-with", "is-json", "max-length", "latency", "python")
AssertionType = Literal[
    "equals", "contains", "icontains", "contains-any", "contains-all", "icontains-any", "icontains-all", "regex",
    "starts-with", "is-json", "max-length", "latency", "python",
    "not-equals", "not-contains", "not-icontains", "not-contains-any", "not-contains-all", "not-icontains-any",
    "not-icontains-all", "not-regex", "not-starts-with", "not-is-json", "not-max-length", "not-latency", "not-python",
]
PYTHON_REF = re.compile(r"^[\w./-]+\.py:[A-Za-z_]\w*$")
Z95 = 1.959963984540054


def wilson_lower(passes: int, runs: int, z: float = Z95) -> float:
    """The Wilson score interval's lower bound for `passes` of `runs`: how high the true pass rate is,
    at 95% confidence, given what was seen. 5 of 5 says at least 0.57; 1 of 1 only 0.21."""
    if runs <= 0:
        return 0.0
    p = passes / runs
    centre = p + z * z / (2 * runs)
    spread = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs))
    return max(0.0, (centre - spread) / (1 + z * z / runs))


class Variable(Strict):
    type: Literal["string", "int", "float", "bool", "list", "object"] = "string"
    required: bool = True
    default: str | int | float | bool | list[Any] | dict[str, Any] | None = None
    description: str | None = None

    def issues(self) -> Iterator[Issue]:
        from mlspec.spec.jinja import type_problem

        if self.default is not None:
            wrong = type_problem(self.type, self.default)
            if wrong:
                yield Issue(("default",), f"the default does not fit the variable's type: {wrong}",
                            code=codes.WRONG_TYPE)


class Assertion(Strict):
    """One check of an output, in promptfoo's terms: `type`, `value`, `weight`; `not-` negates."""

    type: AssertionType
    value: Any = Field(None, description="what to compare with: text, a list (contains-any/all), a regular "
                       "expression, a JSON Schema (is-json, optional), a length, a path:function (python)")
    threshold: float | None = Field(None, gt=0, description="latency: the most milliseconds a call may take")
    weight: float = Field(1.0, ge=0, description="its share of the test's score")

    def issues(self) -> Iterator[Issue]:
        base = self.type.removeprefix("not-")
        value = self.value
        if base in ("equals", "contains", "icontains", "starts-with", "regex") and not isinstance(value, str):
            yield Issue(("value",), f"`{self.type}` needs a text value", code=codes.WRONG_TYPE, expected="a string")
        if base.endswith(("-any", "-all")) and not (isinstance(value, list) and value
                                                    and all(isinstance(v, str) for v in value)):
            yield Issue(("value",), f"`{self.type}` needs a list of texts", code=codes.WRONG_TYPE,
                        expected="[a, b, ...]")
        if base == "regex" and isinstance(value, str):
            try:
                re.compile(value)
            except re.error as err:
                yield Issue(("value",), f"invalid regular expression: {err}")
        if base == "max-length" and not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            yield Issue(("value",), "`max-length` needs a positive number of characters", code=codes.WRONG_TYPE)
        if base == "latency" and self.threshold is None and not isinstance(value, (int, float)):
            yield Issue(("threshold",), "`latency` needs `threshold` (milliseconds)", code=codes.MISSING_FIELD,
                        expected="threshold: 500")
        if base == "is-json" and value is not None:
            if not isinstance(value, dict):
                yield Issue(("value",), "`is-json` takes a JSON Schema (a mapping) or nothing", code=codes.WRONG_TYPE)
            else:
                from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
                from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]

                try:
                    Draft202012Validator.check_schema(value)
                except SchemaError as err:
                    yield Issue(("value",), f"not a valid JSON Schema: {err.message}")
        if base == "python" and not (isinstance(value, str) and PYTHON_REF.match(value)):
            yield Issue(("value",), "`python` names a function in the spec repo", code=codes.INVALID_VALUE,
                        expected="scripts/checks.py:function")


class PromptTest(Strict):
    name: str
    vars: FreeForm = Field(default_factory=dict)
    assert_: list[Assertion] = Field(alias="assert", min_length=1)
    threshold: float | None = Field(None, gt=0, le=1, description="the weighted share of assertions that must "
                                    "pass (default: all of them)")
    repeat: int = Field(1, ge=1, le=1000, description="runs of this case, each uncached; with more than one, the "
                        "case passes on its pass rate's Wilson lower bound")


class Gate(Strict):
    min_pass_rate: float = Field(1.0, ge=0, le=1, description="share of test cases that must pass for the aliases "
                                 "to move to this version")
    case_pass_rate: float = Field(0.5, gt=0, lt=1, description="a repeated case passes when the Wilson lower bound "
                                  "(95%) of its pass rate reaches this")


class Settings(Strict):
    """What a model is asked with: part of the prompt's version."""

    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: list[str] | None = None


class OpenAITarget(Strict):
    """An OpenAI-compatible chat completions endpoint: OpenAI, vLLM, Ollama, TGI."""

    base_url: str = Field(pattern=r"^https?://", examples=["http://127.0.0.1:8000/v1"])
    model: str
    api_key: EnvStr | None = Field(None, description="${env:NAME}: never written to state or logs")
    timeout_s: float = Field(30, gt=0, le=600)
    retries: int = Field(3, ge=0, le=10, description="retries with backoff when the endpoint is down or busy")


class Target(Strict):
    """Where the tests send the rendered prompt: exactly one."""

    service: Ref("Service") | None = None  # type: ignore[valid-type]
    openai: OpenAITarget | None = None
    python: str | None = Field(None, pattern=PYTHON_REF.pattern, description="path.py:function(prompt, settings)")
    echo: bool | None = Field(None, description="the rendered prompt itself: template-only tests")
    concurrency: int = Field(8, ge=1, le=256, description="cases in flight at once")

    def issues(self) -> Iterator[Issue]:
        chosen = [n for n in ("service", "openai", "python", "echo") if getattr(self, n) not in (None, False)]
        if len(chosen) != 1:
            yield Issue((), "a target is exactly one of service, openai, python, echo",
                        expected="{service: Service/x}, {openai: {...}}, {python: path.py:fn} or {echo: true}")


class Split(Strict):
    """A/B: the new version takes `share` of the alias, the version it held keeps the rest; which one a
    caller gets is decided by a hash of its key (a user id), the same every time."""

    share: float = Field(gt=0, lt=1, description="share of keys on the new version")


class PromptSpec(SpecBase):
    template: str | None = Field(None, description="inline Jinja2 template")
    template_file: str | None = Field(None, description="a Jinja2 file, relative to this spec's directory")
    variables: dict[str, Variable] = Field(default_factory=dict)
    settings: Settings = Field(default_factory=Settings)
    target: Target = Field(default_factory=lambda: Target(echo=True))
    tests: list[PromptTest] = Field(default_factory=list)
    gate: Gate = Field(default_factory=Gate)
    aliases: list[str] = Field(default_factory=lambda: ["production"], description="moved to a version that "
                               "passes its gate (production, staging, any name)")
    split: Split | None = Field(None, description="A/B: share the first alias between the new version and the "
                                "one it held")

    def issues(self) -> Iterator[Issue]:
        if (self.template is None) == (self.template_file is None):
            yield Issue((), "a prompt needs exactly one of template, template_file",
                        expected="template: ... or template_file: path")
        for name in self.variables:
            if not re.match(VARIABLE_NAME, name):
                yield Issue(("variables", name), f"`{name}` is not a valid variable name",
                            expected="letters, digits and _")
            elif name in RESERVED:
                yield Issue(("variables", name), f"`{name}` is an argument of mlspec.prompts.render, not free for a "
                            "variable", hint=f"rename it (`{name}_`, or a more telling name)")
        for alias in self.aliases:
            if not re.match(r"^[a-z][a-z0-9-]*$", alias):
                yield Issue(("aliases",), f"`{alias}` is not an alias name",
                            expected="lowercase letters, digits and -")
        if "candidate" in self.aliases:
            yield Issue(("aliases",), "`candidate` is where a version that failed its gate goes; it is not asked for",
                        hint="remove it")
        if self.template is not None:
            yield from template_issues(self.template, self.variables, ("template",))
        for i, test in enumerate(self.tests):
            yield from self._test_issues(i, test)
        if self.split is not None and not self.aliases:
            yield Issue(("split",), "a split shares an alias: name one under `aliases`")

    def _test_issues(self, i: int, test: PromptTest) -> Iterator[Issue]:
        from mlspec.spec.jinja import type_problem
        from mlspec.spec.suggest import did_you_mean

        for var, value in test.vars.items():
            if var not in self.variables:
                yield Issue(("tests", i, "vars", var), f"test sets undeclared variable `{var}`",
                            hint=did_you_mean(var, sorted(self.variables)))
                continue
            wrong = type_problem(self.variables[var].type, value)
            if wrong:
                yield Issue(("tests", i, "vars", var), f"`{var}`: {wrong}", code=codes.WRONG_TYPE)
        for var, declared in self.variables.items():
            if declared.required and declared.default is None and var not in test.vars:
                yield Issue(("tests", i, "vars"), f"test `{test.name}` does not set the required variable `{var}`",
                            code=codes.MISSING_FIELD)
        if test.repeat > 1:
            best = wilson_lower(test.repeat, test.repeat)
            if best < self.gate.case_pass_rate:
                need = next(n for n in range(test.repeat, 100_000) if wilson_lower(n, n) >= self.gate.case_pass_rate)
                yield Issue(("tests", i, "repeat"), f"{test.repeat} runs can never reach the case pass rate "
                            f"{self.gate.case_pass_rate:g}: all passing gives a lower bound of {best:.2f}",
                            hint=f"repeat at least {need} times, or lower gate.case_pass_rate")


def template_issues(text: str, variables: dict[str, Variable], loc: tuple[str, ...]) -> Iterator[Issue]:
    """A template's problems, each at its line and column inside the template."""
    from mlspec.spec.jinja import analyze
    from mlspec.spec.suggest import did_you_mean

    found = analyze(text)
    for problem in found.problems:
        yield Issue(loc, problem.message, code=codes.TEMPLATE_SYNTAX if problem.kind == "syntax" else
                    codes.TEMPLATE_UNSAFE, hint=problem.hint, at=(problem.line, problem.col))
    if any(p.kind == "syntax" for p in found.problems):
        return
    for name, (line, col) in found.used.items():
        if name not in variables:
            yield Issue(loc, f"the template uses `{name}`, which is not declared", code=codes.TEMPLATE_UNDECLARED,
                        expected="a variable under `variables`",
                        hint=did_you_mean(name, sorted(variables)) or f"declare `{name}` under variables",
                        at=(line, col))
    for name in variables:
        if name not in found.used:
            yield Issue(("variables", name), f"`{name}` is declared but the template never uses it",
                        code=codes.TEMPLATE_UNUSED, hint=did_you_mean(name, sorted(found.used)) or "remove it")


class Prompt(Envelope):
    kind_name: ClassVar[str] = "Prompt"
    kind: Literal["Prompt"]
    spec: PromptSpec
