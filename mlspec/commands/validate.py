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
    staged: bool = False,
) -> int:
    if staged:  # what the commit would hold: the index, checked out by git into a scratch directory
        from mlspec.project import find_root
        from mlspec.repo.staged import staged_tree

        with staged_tree(find_root(project)) as root:
            report = validate(root, [root / p for p in paths] or None, use_cache=use_cache, jobs=jobs)
            show_report(report, fmt, style)
        return EXIT_OK if report.ok else EXIT_ERROR
    report = validate(project, paths or None, use_cache=use_cache, jobs=jobs)
    show_report(report, fmt, style)
    return EXIT_OK if report.ok else EXIT_ERROR
