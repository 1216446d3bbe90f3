"""Diagnostics: what every check in mlspec reports, in one shape.

A diagnostic is data, not an exception, so one pass can collect all of them and every renderer
(compiler-style text, JSON, GitHub annotations) shows the same facts. Codes are stable: tools and
users may match on them (docs/diagnostics.md lists them).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    code: str
    message: str
    file: str  # project-relative POSIX path, or the path as given when outside the project
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    severity: Severity = Severity.ERROR
    field: str | None = None  # dotted path into the document: spec.hyperparameters.learning_rate
    expected: str | None = None
    hint: str | None = None
    doc: int | None = None  # 0-based index of the YAML document within the file
    width: int = 1  # how many columns the caret underlines

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line or 0, self.col or 0, self.code, self.message)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.value
        del data["width"]
        return data


def format_field(loc: tuple[str | int, ...]) -> str:
    """`('spec', 'columns', 0, 'name')` -> `spec.columns[0].name`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Where a field path of a document was written: (file, doc, loc, key?) -> (line, col, width). Checks
# that work on summaries get one of these to position a diagnostic only when they report one.
Locate = Callable[[str, int, tuple[str | int, ...], bool], tuple[int | None, int | None, int]]


def located(locate: Locate, file: str, doc: int, loc: tuple[str | int, ...], code: str, message: str, *,
            key: bool = False, **extra: Any) -> Diagnostic:
    """A diagnostic at `loc` of a document (its key when `key`, else its value)."""
    line, col, width = locate(file, doc, loc, key)
    return Diagnostic(code, message, file, line, col, field=format_field(loc), doc=doc, width=width, **extra)
