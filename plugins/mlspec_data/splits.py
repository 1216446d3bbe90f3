"""Deterministic splits and PII transforms.

A split assignment depends on the row order, the seed and the ratios only: rows are permuted with
numpy's PCG64 generator (the same stream on every platform), within each stratum when a column is
given, and cut by largest-remainder counts. Same content + same seed = same split, on any machine.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def counts(total: int, ratios: Mapping[str, float]) -> list[int]:
    """Rows per split: floors, then the leftover rows to the largest remainders (ties in spec order)."""
    raw = [total * share for share in ratios.values()]
    out = [int(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - out[i]), i))
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def assign(rows: int, ratios: Mapping[str, float], seed: int, strata: np.ndarray | None) -> np.ndarray:
    """Split index per row (int8, in the order of `ratios`)."""
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    out = np.empty(rows, dtype=np.int8)
    groups = [np.arange(rows)] if strata is None else [np.flatnonzero(strata == k) for k in np.unique(strata)]
    for members in groups:
        shuffled = rng.permutation(members)
        start = 0
        for index, size in enumerate(counts(len(members), ratios)):
            out[shuffled[start : start + size]] = index
            start += size
    return out


def pii_transform(batch: pa.RecordBatch, actions: Mapping[str, str], salt: str) -> pa.RecordBatch:
    """Drop or salted-hash the PII columns: what downstream steps receive never holds the raw values."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns, names = [], []
    for name in batch.schema.names:
        action = actions.get(name)
        if action == "drop":
            continue
        column = batch.column(name)
        if action == "hash":
            encoded = pc.dictionary_encode(column.cast(pa.string()))
            digests = pa.array([_salted(salt, v) for v in encoded.dictionary.to_pylist()], pa.string())
            column = pc.take(digests, encoded.indices)
        columns.append(column)
        names.append(name)
    return pa.RecordBatch.from_arrays(columns, names=names)


def _salted(salt: str, value: str) -> str:
    return hashlib.sha256(f"{salt}\0{value}".encode()).hexdigest()
