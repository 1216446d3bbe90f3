"""Prompt: a versioned template with typed variables, tests, and aliases in the prompt registry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import ClassVar, Literal

from pydantic import Field

from mlspec.spec.kinds.base import Envelope, FreeForm, Issue, Ref, SpecBase, Strict

PLACEHOLDER_RE = re.compile(r"\{\{\s*([A-Za-z_]\w*)\s*\}\}")
VARIABLE_NAME = r"^[A-Za-z_]\w*$"


class Variable(Strict):
    type: Literal["string", "int", "float", "bool", "list"] = "string"
    required: bool = True
    default: str | int | float | bool | list[str] | None = None
    description: str | None = None


class Assertion(Strict):
    """Exactly one check on the output."""

    contains: str | None = None
    not_contains: str | None = None
    regex: str | None = None
    equals: str | None = None
    max_length: int | None = Field(None, gt=0)
    label: str | None = Field(None, description="for classifier targets: the expected label")

    def issues(self) -> Iterator[Issue]:
        set_fields = [name for name, value in self if value is not None]
        if len(set_fields) != 1:
            yield Issue((), "an assertion checks exactly one thing",
                        expected="one of contains, not_contains, regex, equals, max_length, label")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as err:
                yield Issue(("regex",), f"invalid regular expression: {err}")


class PromptTest(Strict):
    name: str
    vars: FreeForm = Field(default_factory=dict)
    assert_: list[Assertion] = Field(alias="assert", min_length=1)


class PromptSpec(SpecBase):
    template: str | None = Field(None, description="inline template with {{ variable }} placeholders")
    template_file: str | None = Field(None, description="path of the template, relative to the spec repo")
    variables: dict[str, Variable] = Field(default_factory=dict)
    target: Ref("Model", "Service") | None = None  # type: ignore[valid-type]
    tests: list[PromptTest] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list, description="e.g. production, staging")

    def issues(self) -> Iterator[Issue]:
        from mlspec.spec.suggest import did_you_mean

        if (self.template is None) == (self.template_file is None):
            yield Issue((), "a prompt needs exactly one of template, template_file",
                        expected="template: ... or template_file: path")
        for name in self.variables:
            if not re.match(VARIABLE_NAME, name):
                yield Issue(("variables", name), f"`{name}` is not a valid variable name",
                            expected="letters, digits and _")
        if self.template is not None:
            declared = sorted(self.variables)
            for used in dict.fromkeys(PLACEHOLDER_RE.findall(self.template)):
                if used not in self.variables:
                    yield Issue(("template",), f"template uses `{{{{ {used} }}}}`, which is not declared",
                                expected="a variable under `variables`",
                                hint=did_you_mean(used, declared) or f"declare `{used}` under variables")
        for i, test in enumerate(self.tests):
            for var in test.vars:
                if var not in self.variables:
                    yield Issue(("tests", i, "vars", var), f"test sets undeclared variable `{var}`",
                                hint=did_you_mean(var, sorted(self.variables)))


class Prompt(Envelope):
    kind_name: ClassVar[str] = "Prompt"
    kind: Literal["Prompt"]
    spec: PromptSpec
