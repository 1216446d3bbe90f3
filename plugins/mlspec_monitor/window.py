"""The current window: logged requests (JSON lines, the Service's request log or a shipped copy) or a
Dataset's split, streamed in batches into one bounded Accumulator per feature.

A request log is read with pyarrow's JSON reader, block by block, never whole: a million lines of 20
features are parsed in C and reduced to reservoirs and counts as they come. A truncated last line (a
log being written, or cut by a crash) is left out and counted; a log with lines pyarrow cannot read is
read again line by line, each bad line skipped and counted, so one corrupt line costs the run nothing.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mlspec_monitor.profile import Accumulator, Sample

BLOCK = 4 << 20  # bytes of log parsed at a time
OOV_PER_BATCH = 2_000  # texts whose words are looked up, per batch (an unbiased estimate of the rate)


@dataclass
class Window:
    samples: dict[str, Sample]
    predictions: Counter[str]
    rows: int  # rows in the window
    read: int  # rows read (in and out of the window)
    skipped: dict[str, int] = field(default_factory=dict)  # why -> lines
    sources: list[str] = field(default_factory=list)
    versions: Counter[str] = field(default_factory=Counter)


def from_logs(paths: Sequence[Path], features: Mapping[str, str], vocabulary: frozenset[str] | None,
              since: float | None, last: int | None) -> Window:
    """Rows of JSON-lines logs (oldest file first), `features`: name -> kind. `since`: the window's
    start (epoch seconds); `last`: only the last N rows of all the files."""
    import pyarrow as pa

    accumulators = {name: Accumulator(kind, vocabulary if kind == "text" else None, seed=i)
                    for i, (name, kind) in enumerate(features.items())}
    predictions: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    skipped: Counter[str] = Counter()
    rows = read = 0
    total = _count_lines(paths) if last is not None else 0
    start_at = max(0, total - last) if last is not None else 0
    position = 0
    for path in paths:
        for batch in _batches(path, skipped):
            n = batch.num_rows
            read += n
            keep = np.ones(n, dtype=bool)
            if last is not None:
                keep &= np.arange(position, position + n) >= start_at
            position += n
            if since is not None and "ts" in batch.schema.names:
                ts = batch.column("ts").to_numpy(zero_copy_only=False).astype(np.float64)
                keep &= np.nan_to_num(ts, nan=0.0) >= since
            if not keep.any():
                continue
            batch = batch.filter(pa.array(keep))
            rows += batch.num_rows
            _reduce(batch, accumulators, predictions, versions)
    return Window({n: a.finish() for n, a in accumulators.items()}, predictions, rows, read, dict(skipped),
                  [str(p) for p in paths], versions)


def from_table_batches(batches: Iterator[Any], features: Mapping[str, str], vocabulary: frozenset[str] | None,
                       label: str | None = None) -> Window:
    """A Dataset's split (parquet record batches): every row is current."""
    accumulators = {name: Accumulator(kind, vocabulary if kind == "text" else None, seed=i)
                    for i, (name, kind) in enumerate(features.items())}
    labels: Counter[str] = Counter()
    rows = 0
    for batch in batches:
        rows += batch.num_rows
        for name, accumulator in accumulators.items():
            if name in batch.schema.names:
                feed(accumulator, batch.column(name))
        if label and label in batch.schema.names:
            labels.update(str(v) for v in batch.column(label).to_pylist() if v is not None)
    return Window({n: a.finish() for n, a in accumulators.items()}, labels, rows, rows)


def _reduce(batch: Any, accumulators: Mapping[str, Accumulator], predictions: Counter[str],
            versions: Counter[str]) -> None:
    names = batch.schema.names
    features = batch.column("features") if "features" in names else None
    for name, accumulator in accumulators.items():
        column = None
        if features is not None and name in [f.name for f in features.type]:
            column = features.field(name)
        if column is None:
            accumulator.sample.nulls += batch.num_rows
            continue
        feed(accumulator, column)
    if "prediction" in names:
        predictions.update(_value_counts(batch.column("prediction")))
    if "version" in names:
        versions.update(_value_counts(batch.column("version")))


def feed(accumulator: Accumulator, column: Any) -> None:
    """One Arrow column of a batch into its feature's accumulator: numbers and lengths vectorised, counts
    by pyarrow; only a column of an unexpected type goes value by value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = accumulator.sample.kind
    nulls = column.null_count
    if kind == "numeric" and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        values = column.drop_null().cast(pa.float64()).to_numpy(zero_copy_only=False)
        finite = values[np.isfinite(values)]
        accumulator.add_array(finite, nulls + len(values) - len(finite))
        return
    if kind == "categorical":
        accumulator.sample.counts.update(_value_counts(column))
        accumulator.sample.rows += len(column) - nulls
        accumulator.sample.nulls += nulls
        return
    if kind == "text" and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        present = column.drop_null()
        accumulator.add_array(pc.utf8_length(present).to_numpy(zero_copy_only=False).astype(np.float64), nulls)
        if accumulator.vocabulary is not None and len(present):
            chosen = present if len(present) <= OOV_PER_BATCH else present.take(
                accumulator.rng.choice(len(present), OOV_PER_BATCH, replace=False))
            from mlspec_monitor.profile import WORD

            for text in chosen.to_pylist():
                words = WORD.findall(text.lower())
                accumulator.sample.words += len(words)
                accumulator.sample.unknown += sum(1 for w in words if w not in accumulator.vocabulary)
        return
    accumulator.add(column.to_pylist())  # a mixed or unexpected type: the slow, careful path


def _value_counts(column: Any) -> Counter[str]:
    import pyarrow.compute as pc

    found: Counter[str] = Counter()
    for row in pc.value_counts(column.drop_null()).to_pylist():
        found[str(row["values"])] += int(row["counts"])
    return found


def _batches(path: Path, skipped: Counter[str]) -> Iterator[Any]:
    """Record batches of one log file. A truncated last line is left out (and counted); lines pyarrow
    cannot read send the whole file down the careful path."""
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        size = path.stat().st_size
    except OSError:
        skipped["missing file"] += 1
        return
    if size == 0:
        return
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 1))
        ends_whole = fh.read(1) == b"\n"
    cut = size
    if not ends_whole:
        cut = _last_newline(path, size) + 1
        skipped["truncated last line"] += 1
    if cut <= 0:
        return
    consumed = 0
    # Plain reads, not a memory map: a mapped log's pages would count against the run's memory as they are
    # read (measured: +140 MB from 250,000 to 1,000,000 rows); a truncated tail is cut off by `Limited`.
    source = pa.OSFile(str(path)) if ends_whole else pa.PythonFile(Limited(open(path, "rb"), cut), mode="r")  # noqa: SIM115
    try:
        reader = pj.open_json(source, read_options=pj.ReadOptions(block_size=BLOCK, use_threads=True))
        for batch in reader:
            consumed += batch.num_rows
            yield batch
        return
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass  # a line pyarrow cannot read (or types that change): the rest of the file, line by line
    finally:
        source.close()
    yield from _careful(path, cut, skipped, consumed)


class Limited(io.RawIOBase):
    """The first `limit` bytes of a file: a log whose last line is still being written, without it."""

    def __init__(self, raw: Any, limit: int) -> None:
        self.raw, self.left = raw, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        data = self.raw.read(min(len(buffer), self.left))
        buffer[:len(data)] = data
        self.left -= len(data)
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def _careful(path: Path, cut: int, skipped: Counter[str], done: int) -> Iterator[Any]:
    """The file's lines after the first `done` rows, one by one: bad lines skipped and counted."""
    rows: list[dict[str, Any]] = []
    valid = 0
    with open(path, "rb") as fh:
        for line in fh.read(cut).splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                skipped["unreadable line"] += 1
                continue
            if not isinstance(row, dict) or not isinstance(row.get("features"), dict):
                skipped["line without features"] += 1
                continue
            valid += 1
            if valid <= done:
                continue
            rows.append({"ts": _number(row.get("ts")), "features": row["features"],
                         "prediction": None if row.get("prediction") is None else str(row["prediction"]),
                         "version": str(row.get("version") or "")})
            if len(rows) >= 50_000:
                yield _careful_batch(rows)
                rows = []
    if rows:
        yield _careful_batch(rows)


def _careful_batch(rows: list[dict[str, Any]]) -> Any:
    """Rows whose features may disagree in type from line to line: each feature a column of Python
    values (strings where they are mixed), as the careful Accumulator path reads them."""
    import pyarrow as pa

    features = [r["features"] for r in rows]
    names = sorted({k for f in features for k in f})
    columns = {}
    for name in names:
        values = [f.get(name) for f in features]
        try:
            columns[name] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            columns[name] = pa.array([None if v is None else str(v) for v in values])
    struct = pa.StructArray.from_arrays(list(columns.values()), names=names) if names else \
        pa.array([{}] * len(rows), type=pa.struct([]))
    return pa.record_batch({"ts": pa.array([r["ts"] for r in rows], pa.float64()), "features": struct,
                            "prediction": pa.array([r["prediction"] for r in rows], pa.string()),
                            "version": pa.array([r["version"] for r in rows], pa.string())})


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _last_newline(path: Path, size: int) -> int:
    with open(path, "rb") as fh:
        step = 1 << 16
        end = size
        while end > 0:
            start = max(0, end - step)
            fh.seek(start)
            chunk = fh.read(end - start)
            found = chunk.rfind(b"\n")
            if found >= 0:
                return start + found
            end = start
    return -1


def _count_lines(paths: Sequence[Path]) -> int:
    total = 0
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                total += chunk.count(b"\n")
    return total


def log_files(base: Path) -> list[Path]:
    """A request log and its rotations, oldest first (requests.jsonl.3, .2, .1, requests.jsonl)."""
    rotated = sorted(base.parent.glob(base.name + ".*"), key=lambda p: -int(p.suffix[1:]) if p.suffix[1:].isdigit()
                     else 0)
    return [p for p in rotated if p.suffix[1:].isdigit()] + ([base] if base.exists() else [])


def window_start(duration: str | None, now: float | None = None) -> float | None:
    if duration is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return (now if now is not None else time.time()) - int(duration[:-1]) * units[duration[-1]]
