"""mlspec: declarative GitOps for the ML lifecycle.

The public API is re-exported here lazily (PEP 562) so that `import mlspec` and the CLI's start-up
stay cheap: a pre-commit hook pays only for what the command it runs needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mlspec.errors import MlspecError, SpecError
    from mlspec.graph import SpecGraph
    from mlspec.project import Project, load_project
    from mlspec.spec.diagnostics import Diagnostic, Severity
    from mlspec.validation import ValidationReport, validate

_EXPORTS = {
    "Diagnostic": "mlspec.spec.diagnostics",
    "Severity": "mlspec.spec.diagnostics",
    "MlspecError": "mlspec.errors",
    "SpecError": "mlspec.errors",
    "Project": "mlspec.project",
    "load_project": "mlspec.project",
    "SpecGraph": "mlspec.graph",
    "ValidationReport": "mlspec.validation",
    "validate": "mlspec.validation",
}

__all__ = [
    "Diagnostic",
    "MlspecError",
    "Project",
    "Severity",
    "SpecError",
    "SpecGraph",
    "ValidationReport",
    "__version__",
    "load_project",
    "validate",
]
assert sorted(set(__all__) - {"__version__"}) == sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mlspec' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
