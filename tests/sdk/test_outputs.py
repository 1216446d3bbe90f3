"""The typed hand-offs between kinds: what each publishes, and what early cutoff compares of it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from mlspec.sdk import DatasetOutputs, ModelOutputs, PromptOutputs, TaskOutputs

SPLIT = {"uri": "sha256/ab/abc.parquet", "digest": "abc", "size": 10, "rows": 3}


def test_the_same_content_is_the_same_digest_whatever_the_timings() -> None:
    first = TaskOutputs.model_validate({"outs": {"out/a.txt": "d1"}, "seconds": 1.5, "cached": False})
    again = TaskOutputs.model_validate({"outs": {"out/a.txt": "d1"}, "seconds": 0.0, "cached": True})
    other = TaskOutputs.model_validate({"outs": {"out/a.txt": "d2"}, "seconds": 1.5})
    assert first.content_digest() == again.content_digest() != other.content_digest()


def test_a_dataset_is_its_splits_not_its_source_bytes() -> None:
    """A re-encoded CSV with the same rows has another version, and hands on the same splits."""
    a = DatasetOutputs.model_validate({"version": "v1", "rows": 3, "splits": {"train": SPLIT}})
    b = DatasetOutputs.model_validate({"version": "v2", "rows": 3, "splits": {"train": SPLIT}})
    c = DatasetOutputs.model_validate({"version": "v1", "rows": 3, "splits": {"train": {**SPLIT, "digest": "x"}}})
    assert a.content_digest() == b.content_digest() != c.content_digest()
    assert a.splits["train"].rows == 3 and a.split("test") is None


def test_a_model_is_its_weights_and_scores_not_its_card_or_version_number() -> None:
    base = {"digest": "w", "metrics": {"f1": 0.9}, "files": {"README.md": {"uri": "u1", "digest": "card1"}}}
    retrained = {**base, "version": 2, "files": {"README.md": {"uri": "u2", "digest": "card2"}}}
    assert ModelOutputs.model_validate(base).content_digest() == ModelOutputs.model_validate(retrained).content_digest()
    better = {**base, "metrics": {"f1": 0.95}}
    assert ModelOutputs.model_validate(base).content_digest() != ModelOutputs.model_validate(better).content_digest()
    assert PromptOutputs.model_validate({"digest": "t", "version": 1, "tests": {"passed": 3}}).content() == {
        "digest": "t", "template": "", "variables": {}, "settings": {}, "split": None}


@pytest.mark.parametrize(("model", "data", "field"), [
    (DatasetOutputs, {"rows": 3}, "version"),
    (DatasetOutputs, {"version": "v", "rows": -1}, "rows"),
    (ModelOutputs, {"metrics": {"f1": "high"}}, "digest"),
])
def test_what_breaks_a_promise_is_named(model: type, data: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        model.model_validate(data)
