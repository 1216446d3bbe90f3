"""Reading a Model's data: the splits its Dataset wrote, each checked against its digest on read.

A Model never reads the Dataset's sources: it reads what the Dataset step produced (PII already
dropped or hashed, split by seed), through the artifact store, by digest. What it was trained on is
therefore exactly what lineage says.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mlspec.sdk import Address, ArtifactStore, DatasetOutputs, StepFailed, StepRequest, did_you_mean

if TYPE_CHECKING:
    import pyarrow as pa


class DataMissing(StepFailed):
    """The Dataset did not produce what the Model needs (a split, a column)."""


def dataset_address(dataset: str) -> str:
    """`spec.dataset` as written (a bare name or Kind/name) -> the Dataset's address (a plain str: it goes
    into outputs and the model card's YAML)."""
    return str(Address.parse(dataset, default_kind="Dataset"))


def dataset_outputs(request: StepRequest, dataset: str) -> tuple[str, DatasetOutputs]:
    """The upstream Dataset's address and what it published; `dataset` as written in the spec."""
    address = dataset_address(dataset)
    if not (request.upstream.get(address) or {}).get("splits"):
        raise DataMissing(f"{address} has produced no splits yet (apply it first, or check that it applied)")
    return address, request.published(address, DatasetOutputs)


def load_split(store: ArtifactStore, outputs: DatasetOutputs, name: str, address: str,
               scratch: Path) -> pa.Table:
    import pyarrow.parquet as pq

    split = outputs.split(name)
    if split is None:
        hint = did_you_mean(name, list(outputs.splits))
        raise DataMissing(f"{address} has no split `{name}` (its splits: {', '.join(outputs.splits) or 'none'})"
                          + (f"; {hint}" if hint else ""))
    path = store.local(split.model_dump(), scratch)  # checks the digest
    return pq.read_table(path)


def require_columns(table: pa.Table, columns: list[str], address: str, split: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        hints = [h for h in (did_you_mean(c, table.column_names) for c in missing) if h]
        raise DataMissing(f"{address}'s split `{split}` has no column{'s' if len(missing) > 1 else ''} "
                          f"{', '.join(missing)} (its columns: {', '.join(table.column_names)})"
                          + (f"; {hints[0]}" if hints else ""))
