"""What the Prompt plugin needs of mlspec's template core (mlspec/spec/jinja.py, the Prompt kind):
the sandboxed renderer, the binding of values to declared variables, a version's digest, the
template checks `mlspec validate` runs on inline templates, and the Wilson bound of the gate."""

from mlspec.spec.jinja import TemplateError, analyze, bind, render, version_digest
from mlspec.spec.kinds.prompt import template_issues, wilson_lower

__all__ = ["TemplateError", "analyze", "bind", "render", "template_issues", "version_digest", "wilson_lower"]
