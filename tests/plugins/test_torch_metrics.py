"""Evaluation metrics and gate verdicts, against values worked out by hand (and scikit-learn's)."""

from __future__ import annotations

import numpy as np
import pytest
from mlspec_torch.metrics import classification, gates, regression, roc_auc


def test_roc_auc_is_the_mann_whitney_statistic_with_ties_counted_half() -> None:
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(np.array([0, 1, 0, 1]), np.full(4, 0.5)) == pytest.approx(0.5)
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.9])) == 0.5  # one class: undefined, not a crash
    multi = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    assert roc_auc(np.array([0, 1, 2]), multi) == pytest.approx(1.0)


def test_classification_metrics_are_macro_averaged() -> None:
    found = classification(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 0]), None,
                           ["accuracy", "f1", "precision", "recall"])
    assert found == pytest.approx({"accuracy": 0.75, "precision": 5 / 6, "recall": 0.75, "f1": 11 / 15})


def test_regression_metrics() -> None:
    found = regression(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]), ["rmse", "mae"])
    assert found == pytest.approx({"rmse": (4 / 3) ** 0.5, "mae": 2 / 3})


def test_gates_say_which_failed_and_by_how_much() -> None:
    found = gates(["f1 >= 0.8", "f1 >= champion + 0.01", "rmse < 0.5", "roc_auc > 0.9"],
                  {"f1": 0.82, "rmse": 0.6}, {"f1": 0.815})
    assert [g.passed for g in found] == [True, False, False, False]
    assert found[1].threshold == pytest.approx(0.825) and found[1].margin == pytest.approx(-0.005)
    assert found[1].why == "f1 0.8200, needs >= 0.8250: short by 0.0050"
    assert found[3].why == "`roc_auc` was not measured"


def test_a_champion_gate_passes_when_there_is_no_champion_yet() -> None:
    [verdict] = gates(["f1 >= champion"], {"f1": 0.5}, None)
    assert verdict.passed and "no champion yet" in verdict.why
