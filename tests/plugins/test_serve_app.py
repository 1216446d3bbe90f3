"""What runs inside a Service's server, without the server: the request check and the request log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("pydantic")

from mlspec_serve.app import RequestLog, check
from mlspec_serve.schema import request_model

CONFIG = {"address": "Service/api"}
FIELDS = [{"name": "tenure", "type": "number"}, {"name": "plan", "type": "category", "examples": ["basic"]}]


def rows(n: int) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return ([{"tenure": float(i), "plan": "basic"} for i in range(n)],
            [{"label": "True", "value": 0.9, "version": "Model/churn v1"} for _ in range(n)])


def test_the_request_log_rotates_by_size_and_keeps_as_many_files_as_asked(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    log = RequestLog({"path": str(path), "sample": 1.0, "max_bytes": 2_000, "keep": 2}, CONFIG)
    for _ in range(30):
        log.write(*rows(3))
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["requests.jsonl", "requests.jsonl.1", "requests.jsonl.2"]
    for file in tmp_path.iterdir():
        assert file.stat().st_size <= 2_000
        for line in file.read_text().splitlines():  # whole lines only, each a record
            record = json.loads(line)
            assert record["service"] == "Service/api" and record["version"] == "Model/churn v1"
            assert set(record["features"]) == {"tenure", "plan"} and record["prediction"] == "True"


def test_the_request_log_samples(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    log = RequestLog({"path": str(path), "sample": 0.1, "max_bytes": 1 << 30, "keep": 1}, CONFIG)
    for _ in range(100):
        log.write(*rows(10))
    written = len(path.read_text().splitlines())
    assert 40 <= written <= 180, written  # about a tenth of 1,000


def test_a_request_check_names_the_field() -> None:
    schema = request_model(FIELDS)
    assert check(json.dumps({"inputs": [{"tenure": 3, "plan": "pro"}]}).encode(), schema) is None
    wrong = check(json.dumps({"inputs": [{"tenure": 3}, {"tenure": "x", "plan": "pro"}]}).encode(), schema)
    assert wrong is not None and wrong["field"] == "inputs.1.tenure"
    assert check(b"[1, 2]", schema) == {"error": 'the body must be {"inputs": [ ... ]}, a list of requests',
                                        "field": "inputs"}
    assert check(b'{"inputs": []}', schema)["field"] == "inputs"  # type: ignore[index]
    assert check(json.dumps({"inputs": [{"tenure": float("nan")}]}).encode(), schema) is not None
