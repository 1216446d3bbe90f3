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
import math
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
        for batch in _batches(path, skipped, features):
            n = batch.num_rows
            read += n
            keep = np.ones(n, dtype=bool)
            if last is not None:
                keep &= np.arange(position, position + n) >= start_at
            position += n
            if since is not None:
                ts = _timestamps(batch)
                if ts is None:
                    skipped["rows without a numeric ts"] += n
                    keep[:] = False
                else:
                    unknown = np.isnan(ts)
                    if unknown.any():
                        skipped["rows without a numeric ts"] += int(unknown.sum())
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
            labels.update(_value_counts(batch.column(label)))
    return Window({n: a.finish() for n, a in accumulators.items()}, labels, rows, rows)


def _timestamps(batch: Any) -> np.ndarray | None:
    """The rows' `ts` (epoch seconds), or None when the log has no numeric one."""
    import pyarrow as pa

    if "ts" not in batch.schema.names:
        return None
    column = batch.column("ts")
    if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
        return None
    return np.asarray(column.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def _reduce(batch: Any, accumulators: Mapping[str, Accumulator], predictions: Counter[str],
            versions: Counter[str]) -> None:
    import pyarrow as pa

    names = batch.schema.names
    features = batch.column("features") if "features" in names else None
    if features is not None and not pa.types.is_struct(features.type):
        features = None  # `"features": 3` on every line: nothing to read
    fields = {f.name for f in features.type} if features is not None else set()
    for name, accumulator in accumulators.items():
        column = None
        if features is not None and name in fields:
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
    import pyarrow as pa
    import pyarrow.compute as pc

    found: Counter[str] = Counter()
    try:
        for row in pc.value_counts(column.drop_null()).to_pylist():
            found[str(row["values"])] += int(row["counts"])
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # lists, structs: counted by their text
        found.update(json.dumps(v, sort_keys=True, default=str) for v in column.to_pylist() if v is not None)
    return found


def _batches(path: Path, skipped: Counter[str], kinds: Mapping[str, str]) -> Iterator[Any]:
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
    reader = None
    failed = False
    try:
        reader = pj.open_json(source, read_options=pj.ReadOptions(block_size=BLOCK, use_threads=True))
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            if not _valid_utf8(batch):  # pyarrow reads bytes as they are; Python could not decode them
                failed = True
                break
            consumed += batch.num_rows
            yield batch
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        failed = True  # a line pyarrow cannot read (or types that change): the rest of the file, line by line
    finally:
        reader = None  # the reader (and its read-ahead) let go of the file before it is closed
        source.close()
    if failed:
        yield from _careful(path, cut, skipped, consumed, kinds)


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


def _careful(path: Path, cut: int, skipped: Counter[str], done: int, kinds: Mapping[str, str]) -> Iterator[Any]:
    """The file's lines after the first `done` rows pyarrow read, one by one: each line that does not
    parse (bad JSON, bad UTF-8), is not an object, or has no features is skipped and counted."""
    rows: list[dict[str, Any]] = []
    objects = 0  # lines that are JSON objects: what pyarrow counted as rows
    with open(path, "rb") as fh:
        for line in fh.read(cut).splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:  # UnicodeDecodeError included
                if objects >= done:
                    skipped["unreadable line"] += 1
                continue
            if not isinstance(row, dict):
                skipped["line that is not an object"] += 1
                continue
            objects += 1
            if objects <= done:
                continue
            if not isinstance(row.get("features"), dict):
                skipped["line without features"] += 1
                continue
            rows.append(row)
            if len(rows) >= 50_000:
                yield _careful_batch(rows, kinds)
                rows = []
    if rows:
        yield _careful_batch(rows, kinds)


def _careful_batch(rows: list[dict[str, Any]], kinds: Mapping[str, str]) -> Any:
    """Rows whose values may disagree in type from line to line, typed per feature as the fast path types
    them: a numeric feature's non-numbers are nulls, anything else is text (containers as JSON)."""
    import pyarrow as pa

    arrays, names = [], []
    for name, kind in kinds.items():
        values = [r["features"].get(name) for r in rows]
        if kind == "numeric":
            arrays.append(pa.array([_number(v) for v in values], pa.float64()))
        else:
            arrays.append(pa.array([_text(v) for v in values], pa.string()))
        names.append(name)
    struct = pa.StructArray.from_arrays(arrays, names=names) if names else pa.array([{}] * len(rows),
                                                                                     type=pa.struct([]))
    return pa.record_batch({"ts": pa.array([_number(r.get("ts")) for r in rows], pa.float64()), "features": struct,
                            "prediction": pa.array([_text(r.get("prediction")) for r in rows], pa.string()),
                            "version": pa.array([_text(r.get("version")) for r in rows], pa.string())})


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str)


def _valid_utf8(batch: Any) -> bool:
    """Whether every string in the batch is UTF-8 (a full validation checks it, in C)."""
    import pyarrow as pa

    try:
        batch.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _number(value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past a float's range
        return None
    return number if math.isfinite(number) else None


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
    """Non-blank lines: the rows a log holds, but for the ones that will be skipped as unreadable."""
    total = 0
    for path in paths:
        with open(path, "rb") as fh:
            total += sum(1 for line in fh if line.strip())
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
