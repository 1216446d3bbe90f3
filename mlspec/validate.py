"""`mlspec validate` as a library call: every problem in the spec set, in one pass.

Files -> (cache | summarize, in worker processes when there are many) -> link -> sorted diagnostics.
Summaries of unchanged files come from the parse cache, so a pre-commit hook on a large repo costs
a stat per file plus the work for what changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlspec import __version__
from mlspec.project import Project, SpecFile, discover, load_project
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.summary import FileSummary, summarize, too_large, unreadable

if TYPE_CHECKING:
    from mlspec.graph import SpecGraph

# Below this many files to parse, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 400


@dataclass
class ValidationReport:
    project: Project
    files: list[SpecFile]
    summaries: dict[str, FileSummary]
    diagnostics: list[Diagnostic]
    graph: SpecGraph
    parsed: int = 0  # files parsed this run (the rest came from the cache)
    seconds: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def resource_count(self) -> int:
        return len(self.graph.nodes)


def validate(
    root: Path | None = None,
    paths: Sequence[Path] | None = None,
    *,
    use_cache: bool = True,
    jobs: int | None = None,
) -> ValidationReport:
    started = time.perf_counter()
    project = load_project(root)
    files, diagnostics = discover(project, list(paths) if paths else None)
    summaries, parsed = read_summaries(project, files, use_cache=use_cache, jobs=jobs)
    from mlspec.graph import link

    graph, link_diagnostics = link(summaries)
    for summary in summaries.values():
        diagnostics.extend(summary.diagnostics)
    diagnostics = project.diagnostics + diagnostics + link_diagnostics
    diagnostics.sort(key=Diagnostic.sort_key)
    return ValidationReport(
        project, files, summaries, diagnostics, graph, parsed, time.perf_counter() - started
    )


def read_summaries(
    project: Project, files: list[SpecFile], *, use_cache: bool = True, jobs: int | None = None
) -> tuple[dict[str, FileSummary], int]:
    """Each file's summary, from the cache when its content is unchanged."""
    from mlspec.spec.cache import ParseCache, digest

    limit = int(project.setting("limits", "max_file_bytes"))
    cache = ParseCache.open(project.state_dir / "cache" / "validate.pickle", (__version__, limit))
    if not use_cache:
        cache.entries = {}
    summaries: dict[str, FileSummary] = {}
    todo: list[tuple[str, bytes, os.stat_result, bytes]] = []
    for spec_file in files:
        rel = spec_file.rel
        try:
            st = spec_file.path.stat()
        except OSError as err:
            summaries[rel] = unreadable(rel, err.strerror or str(err))
            continue
        if st.st_size > limit:
            summaries[rel] = too_large(rel, st.st_size, limit)
            continue
        hit = cache.lookup_stat(rel, st)
        if hit is not None:
            summaries[rel] = hit
            continue
        try:
            raw = spec_file.path.read_bytes()
        except OSError as err:
            summaries[rel] = unreadable(rel, err.strerror or str(err))
            continue
        key = digest(raw)
        hit = cache.lookup_digest(rel, st, key)
        if hit is not None:
            summaries[rel] = hit
        else:
            todo.append((rel, raw, st, key))
    for (rel, _, st, key), summary in zip(todo, _summarize_all([(r, raw) for r, raw, _, _ in todo], jobs)):
        summaries[rel] = summary
        cache.store(rel, st, key, summary)
    if use_cache:
        cache.save(keep=set(summaries))
    return {f.rel: summaries[f.rel] for f in files}, len(todo)


def _summarize_all(items: list[tuple[str, bytes]], jobs: int | None) -> list[FileSummary]:
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    if workers <= 1 or len(items) < PARALLEL_THRESHOLD:
        return [summarize(raw, rel) for rel, raw in items]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Import the kinds before forking so each worker inherits them instead of importing again.
    import mlspec.spec.check  # noqa: F401

    size = max(64, len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [summary for chunk in pool.map(_summarize_chunk, chunks) for summary in chunk]


def _summarize_chunk(items: list[tuple[str, bytes]]) -> list[FileSummary]:
    return [summarize(raw, rel) for rel, raw in items]
