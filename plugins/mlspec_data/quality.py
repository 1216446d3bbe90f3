"""Schema checks, quality checks and the profile of a dataset, computed in one streaming pass.

Each batch updates running state (counts, min/max, value counts, a seeded reservoir sample, 64-bit
row and column hashes); nothing holds the whole dataset. Memory grows only with the hashes kept for
uniqueness and duplicate checks (8 bytes a row) and with the reservoir (fixed size).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec_data.sources import DataError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

MAX_SHOWN = 5  # offending rows quoted in a failure
RESERVOIR = 100_000  # values sampled per numeric column for quantiles and histograms
TOP_VALUES = 50
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
_MIX = 0x9E3779B97F4A7C15


@dataclass
class Violation:
    column: str | None
    rule: str  # "nullable", "range", "allowed", "unique", "type", "min_rows", ...
    observed: str
    rows: list[tuple[int, Any]] = field(default_factory=list)  # (row number, value), the first few
    count: int = 0

    def describe(self, locate: Any) -> str:
        where = f"column `{self.column}`: " if self.column else ""
        text = f"{where}rule `{self.rule}` failed: {self.observed}"
        if self.rows:
            shown = "; ".join(f"{locate(row)} = {value!r}" for row, value in self.rows[:MAX_SHOWN])
            text += f"; offending rows ({min(len(self.rows), MAX_SHOWN)} of {self.count or len(self.rows)}): {shown}"
        return text


@dataclass
class _Numeric:
    count: int = 0
    total: float = 0.0
    squares: float = 0.0
    low: float | None = None
    high: float | None = None
    reservoir: Any = None  # a Reservoir of RESERVOIR values, made on the first batch
    nonfinite: int = 0


class Inspector:
    """Feed batches in order with `add`; then `finish` for violations and the profile."""

    def __init__(self, spec: Any, *, profile: bool, stratify: str | None, seed: int,
                 pii: set[str] | None = None) -> None:
        import numpy as np

        self.pii = pii or set()  # columns whose values never leave this pass: not profiled, not quoted
        self.schema = spec.schema_.columns if spec.schema_ is not None else {}
        self.strict = bool(spec.schema_ and spec.schema_.strict)
        self.checks = spec.checks
        self.profile = profile
        self.stratify = stratify
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.rows = 0
        self.nulls: Counter[str] = Counter()
        self.violations: dict[tuple[str | None, str], Violation] = {}
        self.numeric: dict[str, _Numeric] = {}
        self.values: dict[str, Counter[Any]] = {}
        self.lengths: dict[str, list[int]] = {}
        self.unique_hashes: dict[str, list[np.ndarray]] = {}
        self.row_hashes: list[np.ndarray] = []
        self.strata: list[np.ndarray] = []
        self.stratum_names: dict[Any, int] = {}
        self.columns: dict[str, str] = {}

    # -- one batch -------------------------------------------------------------------------------

    def add(self, batch: pa.RecordBatch) -> None:
        import numpy as np

        if not self.columns:
            self._check_columns(batch)
        offset = self.rows
        hashes = np.zeros(batch.num_rows, dtype=np.uint64) if self._dedupe() else None
        for name in batch.schema.names:
            column = batch.column(name)
            self.nulls[name] += column.null_count
            rule = self.schema.get(name)
            if rule is not None:
                self._check_values(name, column, rule, offset)
            if hashes is not None or (rule is not None and rule.unique):
                col_hash = column_hashes(column)
                if hashes is not None:
                    hashes = (hashes * np.uint64(_MIX)) ^ col_hash
                if rule is not None and rule.unique:
                    self.unique_hashes.setdefault(name, []).append(col_hash)
            if self.profile and name not in self.pii:
                self._profile(name, column)
        if hashes is not None:
            self.row_hashes.append(hashes)
        if self.stratify is not None:
            self.strata.append(self._codes(batch.column(self.stratify)))
        self.rows += batch.num_rows

    def _dedupe(self) -> bool:
        return bool(self.checks and self.checks.max_duplicate_fraction is not None)

    def _check_columns(self, batch: pa.RecordBatch) -> None:
        import pyarrow as pa

        present = {f.name: f.type for f in batch.schema}
        self.columns = {name: str(kind) for name, kind in present.items()}
        missing = [c for c in self.schema if c not in present]
        if missing:
            from mlspec.sdk import did_you_mean

            hints = [did_you_mean(c, list(present)) for c in missing]
            raise DataError(f"the schema's column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                            f"{'are' if len(missing) > 1 else 'is'} not in the data (its columns: "
                            f"{', '.join(present)})" + "".join(f"; {h}" for h in hints if h))
        if self.strict:
            extra = [c for c in present if c not in self.schema]
            if extra:
                raise DataError(f"the data has columns the schema does not declare (schema.strict): {', '.join(extra)}")
        if self.stratify is not None and self.stratify not in present:
            raise DataError(f"splits.stratify_by `{self.stratify}` is not a column of the data")
        for name, rule in self.schema.items():
            kind = present[name]
            if not _type_ok(rule.type, kind) and not pa.types.is_null(kind):
                self._violate(name, "type", f"declared {rule.type}, the data holds {kind}", [])

    def _check_values(self, name: str, column: pa.Array, rule: Any, offset: int) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if not rule.nullable and column.null_count:
            self._violate(name, "nullable", "null values in a column declared nullable: false",
                          _rows(pc.is_null(column), column, offset), column.null_count)
        if rule.range is not None and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            bad = None
            if rule.range.min is not None:
                bad = pc.less(column, rule.range.min)
            if rule.range.max is not None:
                over = pc.greater(column, rule.range.max)
                bad = over if bad is None else pc.or_(bad, over)
            if bad is not None:
                count = pc.sum(bad).as_py() or 0
                if count:
                    self._violate(name, "range", f"values outside [{_fmt(rule.range.min)}, {_fmt(rule.range.max)}]",
                                  _rows(bad, column, offset), count)
        if rule.allowed is not None:
            allowed = pa.array(rule.allowed)
            try:
                inside = pc.is_in(column, value_set=allowed.cast(column.type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                inside = pc.is_in(column.cast(pa.string()), value_set=allowed.cast(pa.string()))
            bad = pc.and_(pc.invert(inside), pc.is_valid(column))
            count = pc.sum(bad).as_py() or 0
            if count:
                self._violate(name, "allowed", f"values outside {list(rule.allowed)}", _rows(bad, column, offset),
                              count)

    def _violate(self, column: str | None, rule: str, observed: str, rows: list[tuple[int, Any]],
                 count: int = 0) -> None:
        if column in self.pii:  # a failure message reaches logs and the audit log: no raw PII in it
            rows = [(row, "(pii)") for row, _ in rows]
        key = (column, rule)
        found = self.violations.setdefault(key, Violation(column, rule, observed))
        found.rows.extend(rows[: MAX_SHOWN - len(found.rows)] if len(found.rows) < MAX_SHOWN else [])
        found.count += count

    def _codes(self, column: pa.Array) -> np.ndarray:
        import numpy as np
        import pyarrow.compute as pc

        encoded = pc.dictionary_encode(column)
        names = [self.stratum_names.setdefault(v, len(self.stratum_names)) for v in encoded.dictionary.to_pylist()]
        indices = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        lookup = np.array([*names, -1], dtype=np.int32)  # -1 (null) maps to the last slot
        codes: np.ndarray = lookup[indices]
        return codes

    def _profile(self, name: str, column: pa.Array) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            values = column.drop_null().cast(pa.float64()).to_numpy(zero_copy_only=False)
            stats = self.numeric.setdefault(name, _Numeric())
            finite = np.isfinite(values)
            if not finite.all():  # inf and nan are counted, not averaged or binned
                stats.nonfinite += int((~finite).sum())
                values = values[finite]
            if len(values):
                stats.count += len(values)
                with np.errstate(over="ignore", invalid="ignore"):  # a column near 1e308: std is then null
                    stats.total += float(values.sum())
                    stats.squares += float((values * values).sum())
                low, high = float(values.min()), float(values.max())
                stats.low = low if stats.low is None else min(stats.low, low)
                stats.high = high if stats.high is None else max(stats.high, high)
                self._sample(stats, values)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind) or \
                pa.types.is_dictionary(kind):
            counts = self.values.setdefault(name, Counter())
            for row in pc.value_counts(column.drop_null()).to_pylist():
                counts[row["values"]] += row["counts"]
            if len(counts) > 20 * TOP_VALUES:  # keep memory bounded on high-cardinality text
                self.values[name] = Counter(dict(counts.most_common(10 * TOP_VALUES)))
            if pa.types.is_string(kind) or pa.types.is_large_string(kind):
                lengths = pc.utf8_length(column.drop_null())
                if len(lengths):
                    seen = self.lengths.setdefault(name, [0, 0, 1 << 62, 0])  # count, total, min, max
                    seen[0] += len(lengths)
                    seen[1] += pc.sum(lengths).as_py() or 0
                    minmax = pc.min_max(lengths).as_py()
                    seen[2] = min(seen[2], minmax["min"])
                    seen[3] = max(seen[3], minmax["max"])

    def _sample(self, stats: _Numeric, values: np.ndarray) -> None:
        """Reservoir sampling, seeded: the same data gives the same profile."""
        from mlspec.sdk.sampling import Reservoir

        if stats.reservoir is None:
            stats.reservoir = Reservoir(RESERVOIR, self.rng)
        stats.reservoir.add(values)

    # -- the verdict -----------------------------------------------------------------------------

    def finish(self, locate: Any) -> tuple[list[Violation], dict[str, Any]]:
        import numpy as np

        for name in list(self.unique_hashes):
            # 8 bytes a row, twice at most (the hashes and one sorted copy); the parts are let go first.
            hashes = np.concatenate(self.unique_hashes.pop(name) or [np.zeros(0, dtype=np.uint64)])
            ordered = np.sort(hashes)
            repeated = ordered[1:][ordered[1:] == ordered[:-1]]
            del ordered
            if len(repeated):
                where = np.flatnonzero(np.isin(hashes, np.unique(repeated)))
                firsts: dict[int, int] = {}
                for i in where.tolist() if len(where) < 1_000_000 else where[:1_000_000].tolist():
                    firsts.setdefault(int(hashes[i]), i)
                later = [i for i in where.tolist()[: 10 * MAX_SHOWN + len(firsts)] if firsts[int(hashes[i])] != i]
                rows = [(i, None) for i in later[:MAX_SHOWN]]
                self._violate(name, "unique", f"{len(repeated)} repeated value(s)", rows, len(repeated))
        checks = self.checks
        if checks is not None:
            if checks.min_rows is not None and self.rows < checks.min_rows:
                self._violate(None, "min_rows", f"{self.rows:,} rows, fewer than {checks.min_rows:,}", [])
            limits = checks.max_null_fraction
            if limits is not None:
                per = limits if isinstance(limits, dict) else {c: limits for c in self.columns}
                for column, limit in per.items():
                    fraction = self.nulls[column] / self.rows if self.rows else 0.0
                    if fraction > limit:
                        self._violate(column, "max_null_fraction", f"{fraction:.4f} of rows are null, more than "
                                                                   f"{limit:g}", [])
            if checks.max_duplicate_fraction is not None and self.row_hashes:
                hashes = np.concatenate(self.row_hashes)
                self.row_hashes.clear()
                hashes.sort()  # in place: no second copy
                fraction = float((hashes[1:] == hashes[:-1]).sum()) / len(hashes) if len(hashes) else 0.0
                del hashes
                if fraction > checks.max_duplicate_fraction:
                    self._violate(None, "max_duplicate_fraction", f"{fraction:.4f} of rows repeat an earlier row, "
                                                                  f"more than {checks.max_duplicate_fraction:g}", [])
        if self.rows == 0:
            self._violate(None, "not_empty", "the dataset has no rows", [])
        return list(self.violations.values()), self._profile_json() if self.profile else {}

    def strata_codes(self) -> np.ndarray | None:
        import numpy as np

        if self.stratify is None:
            return None
        return np.concatenate(self.strata) if self.strata else np.zeros(0, dtype=np.int64)

    def _profile_json(self) -> dict[str, Any]:
        import numpy as np

        out: dict[str, Any] = {"rows": self.rows, "columns": {}}
        for name, kind in self.columns.items():
            column: dict[str, Any] = {"type": kind, "null_fraction": self.nulls[name] / self.rows if self.rows else 0}
            if name in self.pii:
                column["pii"] = True  # its values are neither profiled nor stored
            stats = self.numeric.get(name)
            if stats is not None and stats.nonfinite:
                column["nonfinite"] = stats.nonfinite
            if stats is not None and stats.count:
                mean = stats.total / stats.count
                sample = np.sort(stats.reservoir.sample())
                counts, edges = _histogram(sample)
                column |= {
                    "min": stats.low, "max": stats.high, "mean": mean,
                    "std": max(0.0, stats.squares / stats.count - mean * mean) ** 0.5,
                    "quantiles": {str(q): float(np.quantile(sample, q)) for q in QUANTILES},
                    "histogram": {"edges": edges.tolist(), "fractions": (counts / max(1, counts.sum())).tolist()},
                }
            counts_ = self.values.get(name)
            if counts_:
                total = sum(counts_.values())
                column["top_values"] = {str(k): v / total for k, v in counts_.most_common(TOP_VALUES)}
                column["distinct_at_least"] = len(counts_)
            lengths = self.lengths.get(name)
            if lengths and lengths[0]:
                column["length"] = {"min": lengths[2], "mean": lengths[1] / lengths[0], "max": lengths[3]}
            out["columns"][name] = column
        return out


def _histogram(sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal-width bins; when the span overflows a float (-1e308 .. 1e308), bins at the quantiles."""
    import numpy as np

    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(sample[-1] - sample[0]):
            return np.histogram(sample, bins=HISTOGRAM_BINS)
        edges = np.unique(np.quantile(sample, np.linspace(0, 1, HISTOGRAM_BINS + 1)))
        return np.histogram(sample, bins=edges if len(edges) > 1 else 1)


def column_hashes(column: pa.Array) -> np.ndarray:
    """A 64-bit hash per value (nulls share one): vectorised for numbers, per distinct value for text."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        values = column.cast(pa.int64()).fill_null(-(1 << 62)).to_numpy(zero_copy_only=False).view(np.uint64)
    elif pa.types.is_floating(kind):
        values = column.cast(pa.float64()).fill_null(float("nan")).to_numpy(zero_copy_only=False).view(np.uint64)
    else:
        encoded = pc.dictionary_encode(column.cast(pa.string()) if not pa.types.is_string(kind) else column)
        table = np.array([hash(v) & 0xFFFFFFFFFFFFFFFF for v in encoded.dictionary.to_pylist()] + [0x5BD1E995],
                         dtype=np.uint64)
        values = table[encoded.indices.fill_null(len(table) - 1).to_numpy(zero_copy_only=False)]
    mixed = values * np.uint64(_MIX)
    hashed: np.ndarray = mixed ^ (mixed >> np.uint64(29))
    return hashed


def _rows(mask: pa.Array, column: pa.Array, offset: int) -> list[tuple[int, Any]]:
    import numpy as np

    picked = np.flatnonzero(mask.fill_null(False).to_numpy(zero_copy_only=False))[:MAX_SHOWN]
    return [(offset + int(i), column[int(i)].as_py()) for i in picked]


def _type_ok(declared: str, kind: pa.DataType) -> bool:
    import pyarrow as pa

    text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    return bool({
        "int": pa.types.is_integer(kind),
        "float": pa.types.is_floating(kind) or pa.types.is_integer(kind),
        "bool": pa.types.is_boolean(kind),
        "string": text,
        "category": text or pa.types.is_dictionary(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind),
        "datetime": pa.types.is_timestamp(kind) or pa.types.is_date(kind),
    }.get(declared, False))


def _fmt(value: float | None) -> str:
    return "-inf" if value is None else f"{value:g}"
