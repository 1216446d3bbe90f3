"""Reading a Model's data: the splits its Dataset wrote, each checked against its digest on read.

A Model never reads the Dataset's sources: it reads what the Dataset step produced (PII already
dropped or hashed, split by seed), through the artifact store, by digest. What it was trained on is
therefore exactly what lineage says.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlspec.artifacts import ArtifactStore
from mlspec.errors import MlspecError

if TYPE_CHECKING:
    import pyarrow as pa


class DataMissing(MlspecError):
    """The Dataset did not produce what the Model needs (a split, a column)."""


def dataset_address(dataset: str) -> str:
    """`spec.dataset` as written (a bare name or Kind/name) -> the Dataset's address."""
    return dataset if "/" in dataset else f"Dataset/{dataset}"


def dataset_outputs(upstream: Mapping[str, Mapping[str, Any]], dataset: str) -> tuple[str, Mapping[str, Any]]:
    """The upstream Dataset's address and outputs; `dataset` as written in the spec (bare or Kind/name)."""
    address = dataset_address(dataset)
    if address not in upstream or not upstream[address].get("splits"):
        raise DataMissing(f"{address} has produced no splits yet (apply it first, or check that it applied)")
    return address, upstream[address]


def load_split(store: ArtifactStore, outputs: Mapping[str, Any], name: str, address: str,
               scratch: Path) -> pa.Table:
    import pyarrow.parquet as pq

    splits = outputs.get("splits") or {}
    if name not in splits:
        from mlspec.spec.suggest import did_you_mean

        hint = did_you_mean(name, list(splits))
        raise DataMissing(f"{address} has no split `{name}` (its splits: {', '.join(splits) or 'none'})"
                          + (f"; {hint}" if hint else ""))
    path = store.local(splits[name], scratch)  # checks the digest
    return pq.read_table(path)


def require_columns(table: pa.Table, columns: list[str], address: str, split: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        from mlspec.spec.suggest import did_you_mean

        hints = [h for h in (did_you_mean(c, table.column_names) for c in missing) if h]
        raise DataMissing(f"{address}'s split `{split}` has no column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} (its columns: {', '.join(table.column_names)})"
                          + (f"; {hints[0]}" if hints else ""))
