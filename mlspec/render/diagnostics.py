"""Diagnostics as a compiler prints them, as JSON, and as GitHub Actions annotations.

Text format (editors and terminals jump to `file:line:col`):

    specs/model.yaml:12:5: error[MLS101] unknown field `learnin_rate`
       |
    12 |     learnin_rate: 0.1
       |     ^^^^^^^^^^^^ spec.hyperparameters.learnin_rate
       = expected: one of batch_size, epochs, learning_rate, ...
       = help: did you mean `learning_rate`?
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mlspec.spec.diagnostics import Diagnostic

JSON_FORMAT_VERSION = "1"
_LINE_BREAK = re.compile(r"\r?\n")  # libyaml's marks count `\n` only (not \r, NEL, LS, PS)
Style = Callable[..., str]


def _plain(text: str, **_: object) -> str:
    return text


class SourceLines:
    """Reads a file's lines once, only for files that have diagnostics."""

    def __init__(self, root: Path, texts: Mapping[str, str] | None = None) -> None:
        """`texts`: contents not on disk (specs read from a git ref, named `REF:path`)."""
        self.root = root
        self._files: dict[str, list[str] | None] = {k: _LINE_BREAK.split(v) for k, v in (texts or {}).items()}

    def line(self, file: str, number: int | None) -> str | None:
        if number is None:
            return None
        if file not in self._files:
            path = Path(file) if Path(file).is_absolute() else self.root / file
            try:
                text = path.read_bytes().decode("utf-8", errors="replace")
                self._files[file] = _LINE_BREAK.split(text)  # not str.splitlines: see _LINE_BREAK
            except OSError:
                self._files[file] = None
        lines = self._files[file]
        if lines is None or not 0 < number <= len(lines):
            return None
        return lines[number - 1]


def render_text(diagnostics: Sequence[Diagnostic], sources: SourceLines, style: Style = _plain) -> str:
    blocks = []
    for d in diagnostics:
        colour = "red" if d.is_error else "yellow"
        where = ":".join(str(x) for x in (d.file, d.line, d.col) if x is not None)
        head = f"{style(where, bold=True)}: {style(f'{d.severity.value}[{d.code}]', fg=colour, bold=True)} {d.message}"
        lines = [head]
        source = sources.line(d.file, d.line)
        gutter = " " * len(str(d.line or ""))
        if source is not None and d.line is not None:
            shown = source.replace("\t", " ")
            col = max(1, min(d.col or 1, len(shown) + 1))
            width = max(1, min(d.width, len(shown) - col + 1)) if len(shown) >= col else 1
            caret = " " * (col - 1) + style("^" * width, fg=colour, bold=True)
            label = f" {d.field}" if d.field else ""
            lines += [f"{gutter} |", f"{d.line} | {shown}", f"{gutter} | {caret}{style(label, fg=colour)}"]
        elif d.field:
            lines.append(f"{gutter} = field: {d.field}")
        if d.expected:
            lines.append(f"{gutter} = expected: {d.expected}")
        if d.hint:
            lines.append(f"{gutter} = {style('help', fg='cyan', bold=True)}: {d.hint}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def summary_line(errors: int, warnings: int, files: int, resources: int, seconds: float) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n:,} {word}{'' if n == 1 else 's'}"

    verdict = "valid" if errors == 0 else "invalid"
    return (
        f"{verdict}: {plural(errors, 'error')}, {plural(warnings, 'warning')} in {plural(files, 'file')} "
        f"({plural(resources, 'resource')}, {seconds:.2f}s)"
    )


def render_json(diagnostics: Sequence[Diagnostic], **summary: object) -> str:
    payload = {
        "format_version": JSON_FORMAT_VERSION,
        **summary,
        "error_count": sum(d.is_error for d in diagnostics),
        "warning_count": sum(not d.is_error for d in diagnostics),
        "diagnostics": [d.to_json() for d in diagnostics],
    }
    return json.dumps(payload, indent=2)


def render_github(diagnostics: Sequence[Diagnostic]) -> str:
    """`::error file=…,line=…,col=…,title=…::message` lines (GitHub Actions workflow commands)."""
    out = []
    for d in diagnostics:
        props = [f"file={_prop(d.file)}"]
        if d.line is not None:
            props.append(f"line={d.line}")
        if d.col is not None:
            props.append(f"col={d.col}")
        props.append(f"title={_prop(d.code)}")
        body = d.message
        if d.field:
            body += f" ({d.field})"
        if d.expected:
            body += f"\nexpected: {d.expected}"
        if d.hint:
            body += f"\n{d.hint}"
        out.append(f"::{'error' if d.is_error else 'warning'} {','.join(props)}::{_data(body)}")
    return "\n".join(out)


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
