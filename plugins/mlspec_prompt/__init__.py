"""mlspec's Prompt plugin: versioned, sandboxed Jinja2 templates tested against real targets, gated on
their pass rate, and moved between aliases in the registry (plugin.py)."""

from mlspec_prompt.plugin import PromptPlugin

__all__ = ["PromptPlugin"]
