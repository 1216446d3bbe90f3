"""The tabular encoding: fitted on train only, the same columns for every split, saved and restored."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from mlspec_torch.tabular import Encoder

TRAIN = pa.table({
    "tenure": [1, 2, None, 4],
    "spend": [10.0, 20.0, 30.0, 40.0],
    "plan": ["basic", "pro", "basic", None],
    "churned": [True, False, True, False],
})


def test_numbers_are_standardised_on_train_and_missing_values_flagged() -> None:
    encoder = Encoder.fit(TRAIN, ["tenure", "spend"], "churned", "tabular-classification")
    inputs, targets = encoder.transform(TRAIN)
    assert encoder.width == 3  # tenure (+ missing flag), spend
    tenure_mean = (1 + 2 + 4) / 3
    assert inputs[2, :2].tolist() == [0.0, 1.0]  # a missing tenure: the mean (0 once standardised), flagged
    assert inputs[0, 0] == pytest.approx((1 - tenure_mean) / np.std([1, 2, 4]))
    assert targets.tolist() == [1, 0, 1, 0]  # classes sorted: False, True


def test_categories_are_one_hot_with_a_bucket_for_the_unseen() -> None:
    encoder = Encoder.fit(TRAIN, ["plan"], "churned", "tabular-classification")
    later = pa.table({"plan": ["pro", "enterprise", None], "churned": [True, True, False]})
    inputs, _ = encoder.transform(later)
    assert encoder.categories["plan"] == ["basic", "pro"]  # by train frequency
    assert inputs.tolist() == [[0, 1, 0], [0, 0, 1], [0, 0, 1]]


def test_the_encoding_round_trips_json() -> None:
    encoder = Encoder.fit(TRAIN, None, "churned", "tabular-classification")
    again = Encoder.from_json(encoder.to_json())
    assert np.array_equal(again.transform(TRAIN)[0], encoder.transform(TRAIN)[0])
    assert again.features == ["tenure", "spend", "plan"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (TRAIN.drop_columns(["churned"]), "column churned not in the data"),
        (TRAIN.set_column(3, "churned", pa.array([True] * 4)), "has 1 class in the train split"),
    ],
)
def test_bad_training_data_is_named(table: pa.Table, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Encoder.fit(table, ["tenure"], "churned", "tabular-classification")


def test_a_label_unseen_in_train_is_an_error_not_a_silent_class() -> None:
    encoder = Encoder.fit(TRAIN, ["spend"], "churned", "tabular-classification")
    with pytest.raises(ValueError, match="values the train split did not"):
        encoder.transform(pa.table({"spend": [1.0], "churned": ["maybe"]}))


def test_regression_targets_are_floats() -> None:
    table = pa.table({"x": [1.0, 2.0], "y": [0.5, None]})
    _, targets = Encoder.fit(table, ["x"], "y", "tabular-regression").transform(table)
    assert targets[0] == 0.5 and np.isnan(targets[1])
