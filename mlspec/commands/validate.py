from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mlspec.errors import EXIT_ERROR, EXIT_OK
from mlspec.render.echo import show_report
from mlspec.validation import validate


def run(
    project: Path | None,
    paths: list[Path],
    fmt: str,
    *,
    use_cache: bool,
    jobs: int | None,
    style: Callable[..., str],
) -> int:
    report = validate(project, paths or None, use_cache=use_cache, jobs=jobs)
    show_report(report, fmt, style)
    return EXIT_OK if report.ok else EXIT_ERROR
