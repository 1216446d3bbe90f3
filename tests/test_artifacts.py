"""The local artifact store: a damaged object is replaced on the next put; files come back under their names."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlspec.artifacts import ArtifactStore
from mlspec.errors import ArtifactError


def test_a_damaged_object_is_rewritten_by_the_next_put_of_its_bytes(tmp_path: Path) -> None:
    store = ArtifactStore(".mlspec/artifacts", tmp_path)
    (tmp_path / "a.onnx").write_bytes(b"the graph, intact")
    stored = store.put(tmp_path / "a.onnx", ".onnx")
    path = store.path(stored.uri)
    path.write_bytes(b"the graph, damage")  # the same size, other bytes
    (tmp_path / "b.onnx").write_bytes(b"the graph, intact")
    assert store.put(tmp_path / "b.onnx", ".onnx") == stored
    assert path.read_bytes() == b"the graph, intact"


def test_fetch_writes_files_under_their_names_each_checked(tmp_path: Path) -> None:
    store = ArtifactStore(".mlspec/artifacts", tmp_path)
    (tmp_path / "g").write_bytes(b"graph")
    (tmp_path / "w").write_bytes(b"weights")
    files = {"model.onnx": store.put(tmp_path / "g", ".onnx").to_json(),
             "model.onnx.data": store.put(tmp_path / "w", ".data").to_json()}
    out = store.fetch(files, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == ["model.onnx", "model.onnx.data"]
    assert (out / "model.onnx.data").read_bytes() == b"weights"
    with pytest.raises(ArtifactError, match="leaves its directory"):
        store.fetch({"../escape": files["model.onnx"]}, tmp_path / "out2")
    store.path(files["model.onnx"]["uri"]).write_bytes(b"graqh")
    with pytest.raises(ArtifactError, match="does not hold the bytes its name says"):
        store.fetch(files, tmp_path / "out3")
