"""A Model reads the splits its Dataset wrote, by digest, and says what is missing."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlspec_torch.splits import DataMissing, dataset_outputs, load_split, require_columns

from mlspec.artifacts import ArtifactError, ArtifactStore


@pytest.fixture
def stored(tmp_path: Path) -> tuple[ArtifactStore, dict[str, object]]:
    store = ArtifactStore(".mlspec/artifacts", tmp_path)
    source = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", "y"]}), source)
    artifact = store.put(source, ".parquet")
    return store, {"splits": {"train": {**artifact.to_json(), "rows": 2}}}


def test_a_split_is_read_back_by_digest(stored: tuple[ArtifactStore, dict[str, object]], tmp_path: Path) -> None:
    store, outputs = stored
    address, found = dataset_outputs({"Dataset/reviews": outputs}, "reviews")
    table = load_split(store, found, "train", address, tmp_path)
    assert address == "Dataset/reviews" and table.column_names == ["text", "label"]


def test_a_split_with_other_bytes_is_refused(stored: tuple[ArtifactStore, dict[str, object]], tmp_path: Path) -> None:
    store, outputs = stored
    path = store.path(outputs["splits"]["train"]["uri"])  # type: ignore[index]
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ArtifactError, match="does not hold the bytes its name says"):
        load_split(store, outputs, "train", "Dataset/reviews", tmp_path)


def test_what_is_missing_is_named(stored: tuple[ArtifactStore, dict[str, object]], tmp_path: Path) -> None:
    store, outputs = stored
    with pytest.raises(DataMissing, match=r"has no split `trian` \(its splits: train\); did you mean `train`\?"):
        load_split(store, outputs, "trian", "Dataset/reviews", tmp_path)
    with pytest.raises(DataMissing, match="Dataset/reviews has produced no splits yet"):
        dataset_outputs({}, "Dataset/reviews")
    table = load_split(store, outputs, "train", "Dataset/reviews", tmp_path)
    with pytest.raises(DataMissing, match=r"has no column labl .*did you mean `label`"):
        require_columns(table, ["text", "labl"], "Dataset/reviews", "train")
