"""A Model reads the splits its Dataset wrote, by digest, and says what is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlspec_torch.splits import DataMissing, dataset_outputs, load_split, require_columns

from mlspec.sdk import ArtifactError, ArtifactStore, DatasetOutputs, PluginError, Resource, StepRequest
from mlspec.sdk.kinds import KINDS

MODEL = {"apiVersion": "mlspec/v1", "kind": "Model", "metadata": {"name": "sentiment"},
         "spec": {"task": "text-classification", "dataset": "reviews", "features": ["text"], "label": "label",
                  "architecture": {"family": "bert"}}}


def request(root: Path, upstream: dict[str, Any]) -> StepRequest:
    model = Resource("Model/sentiment", KINDS["Model"].model_validate(MODEL), "specs/sentiment.yaml", 0)
    return StepRequest(model, upstream, None, root, ".mlspec/artifacts")


@pytest.fixture
def stored(tmp_path: Path) -> tuple[ArtifactStore, dict[str, Any]]:
    store = ArtifactStore(".mlspec/artifacts", tmp_path)
    source = tmp_path / "train.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "label": ["x", "y"]}), source)
    artifact = store.put(source, ".parquet")
    return store, {"version": "v1", "rows": 2, "splits": {"train": {**artifact.to_json(), "rows": 2}}}


def test_a_split_is_read_back_by_digest(stored: tuple[ArtifactStore, dict[str, Any]], tmp_path: Path) -> None:
    store, outputs = stored
    address, found = dataset_outputs(request(tmp_path, {"Dataset/reviews": outputs}), "reviews")
    assert isinstance(found, DatasetOutputs) and found.splits["train"].rows == 2
    table = load_split(store, found, "train", address, tmp_path)
    assert address == "Dataset/reviews" and table.column_names == ["text", "label"]


def test_a_split_with_other_bytes_is_refused(stored: tuple[ArtifactStore, dict[str, Any]], tmp_path: Path) -> None:
    store, outputs = stored
    found = DatasetOutputs.model_validate(outputs)
    path = store.path(found.splits["train"].uri)
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(ArtifactError, match="does not hold the bytes its name says"):
        load_split(store, found, "train", "Dataset/reviews", tmp_path)


def test_what_is_missing_is_named(stored: tuple[ArtifactStore, dict[str, Any]], tmp_path: Path) -> None:
    store, outputs = stored
    found = DatasetOutputs.model_validate(outputs)
    with pytest.raises(DataMissing, match=r"has no split `trian` \(its splits: train\); did you mean `train`\?"):
        load_split(store, found, "trian", "Dataset/reviews", tmp_path)
    with pytest.raises(DataMissing, match="Dataset/reviews has produced no splits yet"):
        dataset_outputs(request(tmp_path, {}), "Dataset/reviews")
    with pytest.raises(DataMissing, match="Dataset/reviews has produced no splits yet"):
        dataset_outputs(request(tmp_path, {"Dataset/reviews": {**outputs, "splits": {}}}), "reviews")
    with pytest.raises(PluginError, match="has not published a DatasetOutputs"):
        dataset_outputs(request(tmp_path, {"Dataset/reviews": {"splits": outputs["splits"]}}), "reviews")
    table = load_split(store, found, "train", "Dataset/reviews", tmp_path)
    with pytest.raises(DataMissing, match=r"has no column labl .*did you mean `label`"):
        require_columns(table, ["text", "labl"], "Dataset/reviews", "train")
