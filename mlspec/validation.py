"""`mlspec validate` as a library call: every problem in the spec set, in one pass.

files -> (cache | summarize, in worker processes when many) -> link -> sorted diagnostics.
See mlspec/spec/cache.py for the three ways a run can go: reuse the last verdict (nothing changed),
re-link only the changed files (they export and reference the same names as before), or link all.
"""

from __future__ import annotations

import gc
import os
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec import __version__
from mlspec.errors import ProjectError
from mlspec.project import Project, SpecFile, discover, find_root, load_project
from mlspec.spec import codes
from mlspec.spec.diagnostics import Diagnostic
from mlspec.spec.summary import FileSummary, Loc, summarize, too_large, unreadable
from mlspec.spec.vocabulary import PROJECT_FILE

if TYPE_CHECKING:
    from mlspec.graph import SpecGraph
    from mlspec.spec.cache import ParseCache
    from mlspec.spec.loader import Document

# Below this many files to parse, worker start-up costs more than it saves.
PARALLEL_THRESHOLD = 300
MAX_WORKERS = 8
# Verdicts that depend on more than one file's own references: their presence forces a full link.
_GLOBAL_CODES = frozenset((codes.DUPLICATE_ADDRESS, codes.CYCLE))


@dataclass
class ValidationReport:
    project: Project
    files: list[SpecFile]
    diagnostics: list[Diagnostic]
    resource_count: int
    graph_: SpecGraph | None = None
    parsed: int = 0  # files parsed this run (the rest came from the cache)
    mode: str = "full"  # how the run went: full | relink | cached
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    paths: Sequence[Path] | None = None

    @property
    def graph(self) -> SpecGraph:
        """The linked graph. A run answered from the cache has none yet: link everything now."""
        if self.graph_ is None:
            self.graph_ = validate(self.project.root, self.paths, need_graph=True).graph
        return self.graph_

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if not d.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(
    root: Path | None = None,
    paths: Sequence[Path] | None = None,
    *,
    use_cache: bool = True,
    jobs: int | None = None,
    need_graph: bool = False,
) -> ValidationReport:
    from mlspec.spec.cache import ParseCache

    started = time.perf_counter()
    root = find_root(root)
    if not root.is_dir():
        raise ProjectError(f"project directory {root} does not exist")
    cache = ParseCache(root / ".mlspec" / "cache" / "validate.db", _cache_key(root), enabled=use_cache)
    try:
        project = _load_project(root, cache)
        files, found = discover(project)
        chosen, outside = files, []
        if paths:
            # References cross files: link the whole project, report on the files asked for.
            chosen, found_here = discover(project, list(paths))
            asked = {f.rel for f in chosen} | {d.file for d in found_here}
            found = [d for d in found if d.file in asked or d.file == PROJECT_FILE] + found_here
            found = [d for d in found if d.code != codes.NO_SPEC_FILES]
            known = {f.rel for f in files}
            outside = [f for f in chosen if f.rel not in known]
        # Only a run over exactly the project's files may store or reuse the project's verdict.
        run = _Run(project, files + outside, cache, whole_project=not outside, jobs=jobs)
        diagnostics, count, graph = run.check(need_graph)
    finally:
        cache.close()
    if paths:
        wanted = {f.rel for f in chosen}
        diagnostics = [d for d in diagnostics if d.file in wanted]
    # The same finding can come from two discoveries (a path given that the globs also match): once.
    unique = dict.fromkeys(project.diagnostics + found + diagnostics)
    diagnostics = sorted(unique, key=Diagnostic.sort_key)
    return ValidationReport(
        project, chosen, diagnostics, count, graph, run.parsed, run.mode, time.perf_counter() - started,
        paths=paths,
    )


class _Run:
    def __init__(
        self, project: Project, files: list[SpecFile], cache: ParseCache, *, whole_project: bool, jobs: int | None
    ) -> None:
        self.project, self.files, self.cache = project, files, cache
        self.whole_project, self.jobs = whole_project, jobs
        self.parsed = 0
        self.mode = "full"
        self.paths = {f.rel: f.path for f in files}
        self._parsed: dict[str, dict[int, Document]] = {}

    def check(self, need_graph: bool) -> tuple[list[Diagnostic], int, SpecGraph | None]:
        # Validation builds many objects and no reference cycles: pausing the cyclic GC saves the
        # generation-2 sweeps over an ever larger heap (about 30% of a cold run).
        enabled = gc.isenabled()
        gc.disable()
        try:
            return self._check(need_graph)
        finally:
            if enabled:
                gc.enable()

    def _check(self, need_graph: bool) -> tuple[list[Diagnostic], int, SpecGraph | None]:
        from mlspec.graph import link
        from mlspec.policy import digest as policy_digest
        from mlspec.policy import rules
        from mlspec.spec.cache import file_set

        stored = self.cache.stats()
        unchanged, restat, todo, fresh = self._sort_files(stored)
        keys: dict[str, bytes] = {}
        for rel, content_key, summary in _summarize_all([(rel, path) for rel, path, _ in todo], self.jobs):
            fresh[rel] = summary
            if content_key is not None:
                keys[rel] = content_key
        self.parsed = len(todo)
        # A file with a summary but no new row (too large, unreadable, not a regular file) loses its
        # old row: otherwise restoring its old bytes would look unchanged beside a stale verdict.
        removed = {rel for rel in fresh if rel not in keys and rel in stored}
        if self.whole_project:
            removed |= set(stored) - set(self.paths)
        policies = rules(self.project.setting("policies"))
        # The same files under other policies get another verdict: the rules are part of its key.
        files = file_set([*self.paths, f"\0policies:{policy_digest(policies)}"])
        reuse = self.whole_project and not need_graph and not removed
        result = self._reused(files, fresh, policies) if reuse else None
        graph: SpecGraph | None = None
        index: dict[str, Any] | None = None  # a new export index, when this run linked everything
        if result is None:
            summaries = self.cache.summaries(unchanged)
            summaries.update(fresh)
            ordered = {f.rel: summaries[f.rel] for f in self.files if f.rel in summaries}
            graph, linked = link(ordered, self.locate)
            own = [d for s in ordered.values() for d in s.diagnostics]
            result = (own + linked + self.policy_diagnostics(ordered, policies), len(graph.nodes))
            index = {rel: s.exports() for rel, s in ordered.items()}
        rows = {rel: (st, keys[rel], fresh[rel]) for rel, _, st in todo if rel in keys}
        if self.whole_project:
            self.cache.write(rows, restat, removed, verdict=(files, *result), index=index)
        else:
            # A partial run stores what it parsed, and forgets any verdict its new rows could contradict.
            self.cache.write(rows, restat, removed, verdict=None, index=None, forget=bool(rows or removed))
        return result[0], result[1], graph

    def _sort_files(self, stored: dict[str, Any]) -> tuple[
        list[str], dict[str, tuple[os.stat_result, bytes]], list[tuple[str, str, os.stat_result]],
        dict[str, FileSummary],
    ]:
        """Each file is unchanged (one stat; or a touch that kept its bytes: `restat`), to parse
        (`todo`, read, digested and parsed by workers), or already judged (`fresh`: unreadable, too large)."""
        from mlspec.spec.cache import digest

        limit = int(self.project.setting("limits", "max_file_bytes"))
        unchanged: list[str] = []
        restat: dict[str, tuple[os.stat_result, bytes]] = {}
        todo: list[tuple[str, str, os.stat_result]] = []
        fresh: dict[str, FileSummary] = {}
        for spec_file in self.files:
            rel = spec_file.rel
            try:
                st = spec_file.stat or os.stat(spec_file.path)
                if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
                    fresh[rel] = unreadable(rel, "not a regular file")
                    continue
                if st.st_size > limit:
                    fresh[rel] = too_large(rel, st.st_size, limit)
                    continue
                row = stored.get(rel)
                if self.cache.trusted(row, st):
                    unchanged.append(rel)
                    continue
                if row is not None:  # touched, maybe not changed: compare content before parsing
                    with open(spec_file.path, "rb") as fh:
                        key = digest(fh.read())
                    if row[4] == key:
                        unchanged.append(rel)
                        restat[rel] = (st, key)
                        continue
            except OSError as err:
                fresh[rel] = unreadable(rel, err.strerror or str(err))
                continue
            todo.append((rel, spec_file.path, st))
        return unchanged, restat, todo, fresh

    def _reused(self, files: Any, fresh: dict[str, FileSummary],
                policies: dict[str, Any]) -> tuple[list[Diagnostic], int] | None:
        """The last verdict on the same files, when it still holds: whole ("cached") when nothing
        changed, or relinked for the changed files only when their names and references did not move."""
        from mlspec.graph import relink
        from mlspec.spec.cache import signature

        previous = self.cache.result(files)
        if previous is None:
            return None
        prior, count = previous
        if not fresh:
            self.mode = "cached"
            return prior, count
        if any(d.code in _GLOBAL_CODES for d in prior):
            return None
        before = self.cache.signatures(fresh)
        exports = self.cache.exports()
        if exports is None or any(before.get(rel) != "".join(signature(s)) for rel, s in fresh.items()):
            return None
        self.mode = "relink"
        kept = [d for d in prior if d.file not in fresh]
        own = [d for s in fresh.values() for d in s.diagnostics]
        return kept + own + relink(exports, fresh, self.locate) + self.policy_diagnostics(fresh, policies), count

    def policy_diagnostics(self, summaries: dict[str, FileSummary], policies: dict[str, Any]) -> list[Diagnostic]:
        """Owner teams and required labels, per resource: per file, so a relink can redo just its files."""
        if not policies.get("owners") and not policies.get("required_labels"):
            return []
        from mlspec.policy import check_resource

        out = []
        for rel, summary in summaries.items():
            broken = {d.doc for d in summary.diagnostics if d.is_error}  # its own errors come first
            for r in summary.resources:
                if r.doc not in broken:
                    out += check_resource(policies, rel, r.doc, r.address, r.owner, dict(r.labels), self.locate)
        return out

    def locate(self, file: str, doc: int, loc: Loc, key: bool) -> tuple[int | None, int | None, int]:
        """Where `loc` is in a file: re-reads the file; only ever called to report an error."""
        documents = self._documents(file)
        document = documents.get(doc)
        if document is None:
            return None, None, 1
        pos = document.position(loc, key=key)
        return pos.line, pos.col, pos.width

    def _documents(self, file: str) -> dict[int, Document]:
        cached = self._parsed
        if file not in cached:
            from mlspec.spec.loader import decode, load_text

            try:
                with open(self.paths[file], "rb") as fh:
                    text, _ = decode(fh.read(), file)
            except (OSError, KeyError):
                text = None
            loaded = load_text(text, file) if text is not None else None
            cached[file] = {d.index: d for d in loaded.documents} if loaded else {}
        return cached[file]


def _cache_key(root: Path) -> tuple[object, ...]:
    """What a cached verdict depends on besides the files: this checkout, and this mlspec's code.

    The project directory's (device, inode) binds the cache to the checkout that wrote it; the
    newest mtime of mlspec's own modules makes an edited (editable) install start afresh.
    """
    here = Path(__file__).parent
    newest = 0
    for directory in (here, here / "spec", here / "spec" / "kinds"):
        with os.scandir(directory) as entries:
            newest = max([newest, *(e.stat().st_mtime_ns for e in entries if e.name.endswith(".py"))])
    st = os.stat(root)
    return (__version__, newest, st.st_dev, st.st_ino)


def _load_project(root: Path, cache: ParseCache) -> Project:
    """mlspec.yaml, from the cache when its bytes are unchanged (no pydantic import on that path)."""
    from mlspec.spec.cache import digest

    path = root / PROJECT_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = None
    except OSError:
        return load_project(root)
    key = digest(raw) if raw is not None else b""
    config = cache.config(key)
    if config is not None:
        values, diagnostics = config
        return Project(root, values, path if raw is not None else None, diagnostics)
    project = load_project(root)
    cache.store_config(key, project.config.model_dump(), project.diagnostics)
    return project


Parsed = tuple[str, "bytes | None", FileSummary]  # rel, content digest (None: unreadable), summary


def _summarize_all(items: list[tuple[str, str]], jobs: int | None) -> list[Parsed]:
    """Read, digest and summarize files; in worker processes when there are many.

    Workers read the files themselves: sending them paths rather than contents, and getting back
    small summaries, keeps the parent's share of the work (pickling) small.
    """
    # Past 8 workers, start-up and memory grow faster than the time saved (measured: 16 CPUs,
    # 10k files: 1.62 s / 238 MB with 16 workers, 1.70 s / 177 MB with 8).
    workers = jobs if jobs is not None else min(MAX_WORKERS, os.cpu_count() or 1)
    if workers <= 1 or len(items) < PARALLEL_THRESHOLD:
        return _summarize_chunk(items)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Import the kinds before forking so each worker inherits them instead of importing again.
    import mlspec.spec.check  # noqa: F401

    size = max(64, len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [parsed for chunk in pool.map(_summarize_chunk, chunks) for parsed in chunk]


def _summarize_chunk(items: list[tuple[str, str]]) -> list[Parsed]:
    """Parse a batch with the cyclic GC paused: parsing makes no cycles, only short-lived trees."""
    from mlspec.spec.cache import digest

    enabled = gc.isenabled()
    gc.disable()
    out: list[Parsed] = []
    try:
        for rel, path in items:
            try:
                with open(path, "rb") as fh:
                    raw = fh.read()
            except OSError as err:
                out.append((rel, None, unreadable(rel, err.strerror or str(err))))
                continue
            out.append((rel, digest(raw), summarize(raw, rel)))
        return out
    finally:
        if enabled:
            gc.enable()
