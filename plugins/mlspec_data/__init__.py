"""The built-in Dataset plugin: versioned data, schema and quality gates, PII, splits, profiles.

A dataset's version is the digest of its files' bytes (through the stat cache: an unchanged 10 GB
dataset costs a stat). Applying it streams the data once to check the schema and quality rules and
to profile every column, then once more to write each split, with PII dropped or salted-hashed, as
content-addressed parquet in the artifact store. Outputs name those artifacts by URI and digest and
carry the source digests, so every downstream resource knows exactly what it was built from.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from mlspec.sdk import (
    API_VERSION,
    ENV_REF,
    Artifact,
    ArtifactStore,
    Capabilities,
    DatasetOutputs,
    Diff,
    Estimate,
    FileDigests,
    Issue,
    Observation,
    PlanContext,
    Resource,
    ResourceState,
    Runtime,
    StepRequest,
    StepResult,
    listing_digest,
    paths,
)
from mlspec_data.sources import DataError, DatasetReader, count_rows, repo_path, resolve

__version__ = "0.1.0"
ROWS = "rows"  # the inputs key carrying the row count, so a plan can say how many rows came or went
THROUGHPUT = 50e6  # bytes a second, for a first estimate before any run


class DatasetPlugin:
    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = "data"
    version: ClassVar[str] = __version__
    settings_model: ClassVar[None] = None
    capabilities: ClassVar[Capabilities] = Capabilities(publishes=DatasetOutputs)

    def validate(self, resource: Resource, context: PlanContext | None = None) -> Iterator[Issue]:
        source = resource.envelope.spec.source
        root, outside = (context.workdir, context.outside) if context is not None else (None, ())
        for i, path in enumerate([source.path] if isinstance(source.path, str) else source.path):
            if paths.leaves(root, path, outside):
                loc = ("spec", "source", "path") if isinstance(source.path, str) else ("spec", "source", "path", i)
                yield Issue(loc, f"source `{path}` leaves the spec repo", expected="a path inside the spec repo")

    def inputs(self, resource: Resource, context: PlanContext) -> Mapping[str, str]:
        """{file: sha256} of every source file, and the total row count (counted only when a file changed)."""
        spec = resource.envelope.spec
        sources = [spec.source.path] if isinstance(spec.source.path, str) else spec.source.path
        produced = _produced_upstream(sources, context)
        if produced:  # an upstream task writes it: its fingerprint stands for these bytes
            return {f"written by {address}": "" for address in sorted(set(produced.values()))}
        files = resolve(context.workdir, spec.source.path, resource.address, _outside(context.outside))
        out = {repo_path(f, context.workdir): context.digests.file(f) for f in files}
        out[ROWS] = str(sum(_rows(f, out[repo_path(f, context.workdir)], spec.source, context.workdir)
                            for f in files))
        return out

    def notices(self, resource: Resource, context: PlanContext) -> list[str]:
        """A source read from outside the repo, which mlspec.yaml allows: the plan says so."""
        source = resource.envelope.spec.source
        found = sorted({d for p in ([source.path] if isinstance(source.path, str) else source.path)
                        if (d := paths.outside_of(context.workdir, p, context.outside))})
        return [f"reads {d}, outside the repo (mlspec.yaml `paths.outside` allows it)" for d in found]

    def refresh(self, resource: Resource, state: ResourceState, context: PlanContext) -> Observation:
        store = ArtifactStore(context.artifacts, context.workdir)
        missing = store.missing(_artifacts(state.outputs))
        if missing:
            return Observation(exists=False, drift=f"artifact{'s' if len(missing) > 1 else ''} "
                                                   f"{', '.join(missing)} deleted from the store")
        return Observation(exists=True)

    def diff(self, resource: Resource, before: Mapping[str, Any], after: Mapping[str, Any]) -> Diff:
        # Every field changes the data downstream receives, or the verdict on it.
        return Diff.replacing(before, after)

    def apply(self, step: StepRequest, runtime: Runtime) -> StepResult:
        started = time.monotonic()
        resource, spec = step.resource, step.resource.envelope.spec
        address, workdir = resource.address, step.workdir
        files = resolve(workdir, spec.source.path, address, _outside(step.outside))
        with FileDigests(workdir / ".mlspec" / "cache" / "digests.db") as digests:
            sources = {repo_path(f, workdir): digests.file(f) for f in files}
        version = _version(sources)
        splits = spec.splits
        from mlspec_data.quality import Inspector

        inspector = Inspector(spec, profile=spec.profile, stratify=splits.stratify_by if splits else None,
                              seed=splits.seed if splits else 0, pii=set(spec.pii.columns) if spec.pii else set())
        starts: list[tuple[int, str]] = []
        try:
            reader = DatasetReader(files, spec.source, workdir)
            for path in files:
                starts.append((inspector.rows, reader.rel(path)))
                for batch in reader.read(path):
                    runtime.check(address)
                    inspector.add(batch)
        except DataError as err:
            raise DataError(f"{address}: {err}") from None
        violations, profile = inspector.finish(lambda row: _locate(row, starts))
        for violation in violations:
            if violation.rule == "not_empty":
                violation.observed += f" (read: {', '.join(rel for _, rel in starts)})"
        if violations:
            _fill_values(violations, reader, inspector.pii)
            shown = "\n".join(f"  - {v.describe(lambda row: _locate(row, starts))}" for v in violations)
            raise DataError(f"{address}: {len(violations)} check{'s' if len(violations) > 1 else ''} failed "
                            f"on {inspector.rows:,} rows (version {version[:12]}):\n{shown}")
        runtime.log(f"{address}: {inspector.rows:,} rows in {len(files)} file(s) pass every check")
        store = ArtifactStore(step.artifacts, workdir)
        written = _write_splits(step, runtime, reader, inspector, store)
        outputs: dict[str, Any] = {
            "version": version, "sources": sources, "rows": inspector.rows,
            "columns": _columns_after_pii(inspector.columns, spec), "splits": written,
            "pii": {"dropped": _pii(spec, "drop"), "hashed": _pii(spec, "hash")},
        }
        if spec.profile:
            outputs["profile"] = _put_json(store, profile, workdir).to_json()
        outputs["seconds"] = round(time.monotonic() - started, 3)
        return StepResult(outputs)

    def destroy(self, step: StepRequest, runtime: Runtime) -> None:
        """Nothing to remove: artifacts are content-addressed and may be shared with other versions."""

    def estimate(self, resource: Resource, previous: ResourceState | None) -> Estimate:
        if previous is not None and "seconds" in previous.outputs:
            return Estimate(seconds=float(previous.outputs["seconds"]), basis="the last run")
        return Estimate(basis="never run before")


def _produced_upstream(sources: list[str], context: PlanContext) -> dict[str, str]:
    """Source paths an upstream Task writes: path -> that Task's address."""
    return {p: context.written[p] for p in sources if context.written.get(p) in context.upstream}


def _outside(directories: tuple[str, ...]) -> tuple[Path, ...]:
    return tuple(Path(d) for d in directories)


def _rows(path: Path, sha: str, source: Any, workdir: Path) -> int:
    """Row counts cached by content digest: counting a CSV means reading it, so only once per version."""
    counts = _RowCounts.of(workdir / ".mlspec" / "cache" / "rows.json")
    if sha in counts.known:
        return int(counts.known[sha])
    try:
        found = count_rows(path, source.format, encoding=source.encoding, delimiter=source.delimiter)
    except DataError:
        return -1  # unreadable: apply reports why, with the file and row
    counts.add(sha, found)
    return found


class _RowCounts:
    """One JSON file per repo, read once per process and written once at its end (or every 1,000 new
    counts): a plan over thousands of datasets must not reread and rewrite it per file."""

    _open: ClassVar[dict[Path, _RowCounts]] = {}

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.known: dict[str, int] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.pending = 0

    @classmethod
    def of(cls, path: Path) -> _RowCounts:
        if path not in cls._open:
            if not cls._open:
                import atexit

                atexit.register(cls.flush_all)
            cls._open[path] = cls(path)
        return cls._open[path]

    def add(self, sha: str, rows: int) -> None:
        self.known[sha] = rows
        self.pending += 1
        if self.pending >= 1000:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".rows.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self.known))
            os.replace(tmp, self.path)
            self.pending = 0
        except OSError:
            pass  # a cache we cannot write is a slower next plan, nothing worse

    @classmethod
    def flush_all(cls) -> None:
        for counts in cls._open.values():
            counts.flush()


def _version(sources: Mapping[str, str]) -> str:
    return listing_digest(sorted(sources.items()))


def _locate(row: int, starts: list[tuple[int, str]]) -> str:
    """Global row index -> `file row N` (1-based data rows, the header not counted)."""
    for start, rel in reversed(starts):
        if row >= start:
            return f"{rel} row {row - start + 1}"
    return f"row {row + 1}"


def _fill_values(violations: list[Any], reader: DatasetReader, pii: set[str]) -> None:
    """Uniqueness is decided at the end, by hash: read the offending values back (failure path only)."""
    wanted = {(v.column, row) for v in violations if v.rule == "unique" and v.column not in pii for row, _ in v.rows}
    if not wanted:
        return
    found: dict[tuple[str, int], Any] = {}
    offset = 0
    for path in reader.files:
        for batch in reader.read(path):
            for column, row in wanted:
                if offset <= row < offset + batch.num_rows:
                    found[(column, row)] = batch.column(column)[row - offset].as_py()
            offset += batch.num_rows
    for violation in violations:
        if violation.rule == "unique":
            violation.rows = [(row, found.get((violation.column, row), value)) for row, value in violation.rows]


def _write_splits(step: StepRequest, runtime: Runtime, reader: DatasetReader, inspector: Any,
                  store: ArtifactStore) -> dict[str, Any]:
    """Second pass: each row to its split's parquet file, PII transformed; then into the store."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlspec_data.splits import assign, pii_transform

    spec = step.resource.envelope.spec
    ratios = spec.splits.ratios if spec.splits else {"all": 1.0}
    seed = spec.splits.seed if spec.splits else 0
    assignment = assign(inspector.rows, ratios, seed, inspector.strata_codes())
    actions = dict(spec.pii.columns) if spec.pii else {}
    salt = _salt(spec, step.resource.address) if "hash" in actions.values() else ""
    names = list(ratios)
    scratch = Path(tempfile.mkdtemp(prefix=".split-", dir=_scratch_dir(store, step.workdir)))
    writers: dict[int, Any] = {}
    rows = [0] * len(names)
    schema = reader.schema
    offset = 0
    try:
        for path in reader.files:
            for batch in reader.read(path):
                runtime.check(step.resource.address)
                part = assignment[offset : offset + batch.num_rows]
                offset += batch.num_rows
                batch = pii_transform(batch, actions, salt) if actions else batch
                schema = batch.schema
                for index in range(len(names)):
                    chosen = batch.filter(pa.array(part == index))
                    if chosen.num_rows == 0:
                        continue
                    if index not in writers:
                        writers[index] = pq.ParquetWriter(scratch / f"{index}.parquet", chosen.schema,
                                                          compression="zstd", write_statistics=True)
                    writers[index].write_batch(chosen)
                    rows[index] += chosen.num_rows
        out = {}
        for index, name in enumerate(names):
            if index not in writers:  # an empty split still gets a file: its columns, no rows
                writers[index] = pq.ParquetWriter(scratch / f"{index}.parquet", schema, compression="zstd")
            writers.pop(index).close()
            artifact = store.put(scratch / f"{index}.parquet", ".parquet")
            out[name] = {**artifact.to_json(), "rows": rows[index]}
        return out
    finally:
        for writer in writers.values():
            writer.close()
        for leftover in scratch.glob("*"):
            leftover.unlink(missing_ok=True)
        scratch.rmdir()


def _scratch_dir(store: ArtifactStore, workdir: Path) -> Path:
    """Beside the store when it is local (the final rename is then atomic), else under .mlspec/."""
    where = Path(store.base) if not store.remote else workdir / ".mlspec" / "tmp"
    where.mkdir(parents=True, exist_ok=True)
    return where


def _put_json(store: ArtifactStore, data: Any, workdir: Path) -> Artifact:
    fd, name = tempfile.mkstemp(prefix=".profile-", suffix=".json", dir=_scratch_dir(store, workdir))
    with os.fdopen(fd, "w") as fh:
        json.dump(_finite(data), fh, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)
    return store.put(Path(name), ".json")


def _finite(value: Any) -> Any:
    """JSON has no inf or nan: a statistic that overflowed (a column spanning +-1e308) is null."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _salt(spec: Any, address: str) -> str:
    value = spec.pii.salt or ""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise DataError(f"{address}: environment variable {name} is not set (pii.salt `${{env:{name}}}`)")
        return os.environ[name]

    salt = ENV_REF.sub(one, value)
    if not salt:
        raise DataError(f"{address}: pii hashes columns but pii.salt is empty: set a secret salt "
                        "(`salt: ${env:PII_SALT}`), or an unsalted hash of an email is as good as the email")
    return salt


def _pii(spec: Any, action: str) -> list[str]:
    return sorted(c for c, a in (spec.pii.columns.items() if spec.pii else ()) if a == action)


def _columns_after_pii(columns: Mapping[str, str], spec: Any) -> dict[str, str]:
    actions = dict(spec.pii.columns) if spec.pii else {}
    return {name: ("string" if actions.get(name) == "hash" else kind)
            for name, kind in columns.items() if actions.get(name) != "drop"}


def _artifacts(outputs: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    found = {f"split `{name}`": art for name, art in (outputs.get("splits") or {}).items()}
    if outputs.get("profile"):
        found["profile"] = outputs["profile"]
    return found
