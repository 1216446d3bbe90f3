"""load_specs: the typed spec set plan works from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mlspec.errors import SpecError
from mlspec.spec.specset import load_specs
from tests.conftest import REPO


def test_the_bundled_specs_load_in_dependency_order() -> None:
    specs = load_specs(REPO)
    order = [r.address for r in specs]
    assert len(specs) == 9
    assert order.index("Task/make-data") < order.index("Dataset/reviews") < order.index("Model/sentiment")
    assert order.index("Model/sentiment") < order.index("Optimization/sentiment-onnx") < order.index(
        "Service/sentiment-api"
    )
    reviews = specs.resources["Dataset/reviews"]
    assert reviews.file == "specs/data/reviews.yaml"
    assert reviews.spec_data()["pii"] == {"columns": {"email": "drop"}}
    assert "schema" in reviews.spec_data()  # aliases as written


def test_invalid_specs_raise_every_diagnostic(project: Callable[..., Path]) -> None:
    root = project({
        "specs/a.yaml": "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: a}\nspec: {cmd: [x], bogus: 1}\n",
        "specs/b.yaml": "apiVersion: mlspec/v1\nkind: Task\nmetadata: {name: b}\nspec: {cmd: [x], depends_on: [Task/c]}\n",
    })
    with pytest.raises(SpecError) as err:
        load_specs(root)
    assert sorted(d.code for d in err.value.diagnostics) == ["MLS101", "MLS201"]
