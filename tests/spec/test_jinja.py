"""Prompt templates: the sandbox holds at render (whatever validate said), analysis never raises on
any text, and binding names every problem at once."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlspec.spec.jinja import TemplateError, analyze, bind, render, version_digest

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ x|attr('__class__') }}",
    "{{ x['__class__'] }}",
    "{{ lipsum.__globals__['os'] }}",
    "{% set l = [] %}{{ l.append(1) }}",  # the immutable sandbox: a template cannot change what it is given
]


@pytest.mark.parametrize("template", ESCAPES)
def test_an_escape_is_refused_at_render_and_named_at_validate(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, {"x": "text"})
    found = analyze(template)
    if "append" not in template:  # a method call on a list is refused at render only
        assert any(p.kind == "unsafe" for p in found.problems), found


def test_a_missing_value_is_an_error_never_an_empty_string() -> None:
    with pytest.raises(TemplateError, match="needs a value it was not given: 'review' is undefined"):
        render("Review: {{ review }}", {})


def test_binding_names_every_problem_at_once() -> None:
    declared = {"review": {"type": "string"}, "stars": {"type": "int"}, "team": {"type": "string", "default": "s"}}
    with pytest.raises(TemplateError) as caught:
        bind(declared, {"reveiw": "x", "stars": True})
    message = str(caught.value)
    assert "`reveiw` is not a variable of this prompt (did you mean `review`?)" in message
    assert "`stars`: expected int, got a boolean" in message and "`review` is required and was not given" in message
    assert bind(declared, {"review": "x", "stars": 4}) == {"review": "x", "stars": 4, "team": "s"}


def test_a_version_is_its_template_variables_and_settings() -> None:
    one = version_digest("{{ a }}", {"a": {"type": "string"}}, {"temperature": 0})
    assert one == version_digest("{{ a }}", {"a": {"type": "string"}}, {"temperature": 0})
    assert one != version_digest("{{ a }}", {"a": {"type": "string"}}, {"temperature": 0.7})
    assert one != version_digest("{{ a }} ", {"a": {"type": "string"}}, {"temperature": 0})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("{}%#_.()[]|'\" \nabcxyz=+-*~!0123456789")) | st.characters(),
               max_size=120))
def test_analysis_and_render_never_raise_anything_but_a_template_error(text: str) -> None:
    found = analyze(text)
    for problem in found.problems:
        assert problem.line >= 1 and problem.col >= 1
    for line, col in found.used.values():
        assert line >= 1 and col >= 1
    if not found.problems:
        with contextlib.suppress(TemplateError):
            render(text, dict.fromkeys(found.used, "v"))
