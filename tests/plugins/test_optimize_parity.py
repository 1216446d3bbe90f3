"""The parity verdict and the benchmark's arithmetic, pure: what makes an optimization the same model."""

from __future__ import annotations

import numpy as np
import pytest
from mlspec_optimize import bench, parity

from mlspec.spec.kinds.optimization import OptimizationSpec


def verdict(original: np.ndarray, optimized: np.ndarray, before: dict[str, float] | None = None,
            after: dict[str, float] | None = None, atol: float | None = 1e-4, rtol: float | None = 1e-3,
            drop: float = 0.01) -> parity.Parity:
    return parity.compare(original, optimized, atol=atol, rtol=rtol, metrics_before=before or {},
                          metrics_after=after or {}, max_metric_drop=drop)


def test_outputs_within_tolerance_pass_and_keep_their_figures() -> None:
    original = np.array([[1.0, -2.0], [0.5, 3.0]], dtype=np.float32)
    found = verdict(original, original + 5e-5, {"f1": 0.9}, {"f1": 0.9})
    assert found.passed and found.outside == 0
    assert found.max_abs_diff == pytest.approx(5e-5, rel=1e-2)  # float32 rounding of 3.0 + 5e-5
    assert found.metrics == {"f1": {"original": 0.9, "optimized": 0.9, "delta": 0.0}}
    assert found.summary() == f"max abs diff {found.max_abs_diff:.2e} on 2 rows; f1 +0.0000"


def test_outputs_beyond_tolerance_are_counted_and_the_worst_is_named() -> None:
    original = np.zeros((3, 2), dtype=np.float32)
    optimized = original.copy()
    optimized[2, 1] = 0.25
    found = verdict(original, optimized)
    assert not found.passed and found.outside == 1
    assert found.failures == ("1 of 6 outputs differ by more than atol 0.0001 + rtol 0.001 x |original| "
                              "(max abs diff 2.500e-01; worst at row 2: 0.000000 -> 0.250000)",)


def test_a_metric_worse_by_more_than_the_drop_fails_with_the_delta() -> None:
    found = verdict(np.zeros((1, 2)), np.zeros((1, 2)), {"accuracy": 0.91, "rmse": 1.0},
                    {"accuracy": 0.89, "rmse": 1.02}, atol=None, rtol=None)
    assert found.failures == (
        "accuracy 0.9100 -> 0.8900 (-0.0200) on the test split, beyond max_metric_drop 0.01",
        "rmse 1.0000 -> 1.0200 (+0.0200) on the test split, beyond max_metric_drop 0.01",  # lower is better
    )
    better = verdict(np.zeros((1, 2)), np.zeros((1, 2)), {"rmse": 1.0}, {"rmse": 0.9}, atol=None, rtol=None)
    assert better.passed  # an improvement is never a drop


def test_nan_outputs_and_a_changed_shape_fail() -> None:
    nan = verdict(np.zeros((2, 2)), np.array([[0.0, np.nan], [0.0, 0.0]]), atol=None, rtol=None)
    assert nan.failures == ("the optimized model produced 1 NaN or infinite outputs",)
    shape = verdict(np.zeros((2, 2)), np.zeros((2, 3)))
    assert not shape.passed and "have shape (2, 3), the original's (2, 2)" in shape.failures[0]


@pytest.mark.parametrize(("precision", "target", "expected"), [
    ("fp32", "onnxruntime", (1e-4, 1e-3)), ("fp16", "tensorrt", (1e-2, 1e-2)), ("fp32", "int8", (None, None))])
def test_tolerances_default_by_precision(precision: str, target: str, expected: tuple[float | None, ...]) -> None:
    spec = OptimizationSpec.model_validate({"model": "m", "target": target, "precision": precision,
                                            "profiles": [{"batch": {"min": 1, "opt": 1, "max": 1}}]})
    assert spec.tolerances() == expected
    assert spec.model_copy(update={"tolerance": spec.tolerance.model_copy(update={"atol": 0.5})}).tolerances()[0] == 0.5


def test_the_benchmark_interleaves_and_counts_rows_over_the_mean_call() -> None:
    calls: list[str] = []
    found = bench.compare({"original": lambda: calls.append("a"), "optimized": lambda: calls.append("b")}, 8,
                          warmup=1, iterations=10)
    assert set(found) == {"original", "optimized"}
    assert calls.count("a") == calls.count("b") == 1 + 5 + 10  # warmup, an untimed call per round, iterations
    assert calls[2:5] == ["a", "a", "a"] and calls[5:8] == ["b", "b", "b"]  # rounds of 1 + 2, taking turns
    timing = bench.timing([0.001, 0.003], 8)
    assert timing.p50_ms == pytest.approx(2.0) and timing.rows_per_second == pytest.approx(4000.0)
    assert bench.speedups({8: {"original": timing, "optimized": bench.timing([0.0005], 8)}}) == {8: pytest.approx(4.0)}
