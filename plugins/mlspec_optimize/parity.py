"""Is the optimized model still the same model? Pure numpy, so the verdict is exact and testable.

Two checks, both always: every output on the validation split within `atol + rtol x |original|`
(numpy's allclose rule; the figures are kept even when int8 leaves the element-wise check out), and
every evaluation metric on the test split no worse than `max_metric_drop` (for a metric where lower
is better, a rise is the drop). The dynamo exporter has shipped wrong numerics
(pytorch/pytorch#169178, #166797): this is the product's promise, not an option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlspec.sdk.kinds import LOWER_IS_BETTER

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Parity:
    rows: int
    max_abs_diff: float
    mean_abs_diff: float
    outside: int  # outputs outside atol + rtol x |original|
    atol: float | None
    rtol: float | None
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> original, optimized, delta
    max_metric_drop: float = 0.0
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "max_abs_diff": self.max_abs_diff, "mean_abs_diff": self.mean_abs_diff,
                "outside_tolerance": self.outside, "atol": self.atol, "rtol": self.rtol, "metrics": self.metrics,
                "max_metric_drop": self.max_metric_drop, "passed": self.passed, "failures": list(self.failures)}

    def summary(self) -> str:
        drops = ", ".join(f"{name} {m['delta']:+.4f}" for name, m in sorted(self.metrics.items()))
        return f"max abs diff {self.max_abs_diff:.2e} on {self.rows:,} rows" + (f"; {drops}" if drops else "")


def compare(original: np.ndarray, optimized: np.ndarray, *, atol: float | None, rtol: float | None,
            metrics_before: Mapping[str, float], metrics_after: Mapping[str, float],
            max_metric_drop: float) -> Parity:
    import numpy as np

    if original.shape != optimized.shape:
        return Parity(len(original), float("inf"), float("inf"), int(original.size), atol, rtol,
                      failures=(f"the optimized model's outputs have shape {optimized.shape}, the original's "
                                f"{original.shape}",))
    diff = np.abs(optimized.astype(np.float64) - original.astype(np.float64))
    finite = bool(np.isfinite(optimized).all())
    max_diff = float(diff.max()) if diff.size else 0.0
    mean_diff = float(diff.mean()) if diff.size else 0.0
    failures: list[str] = []
    if not finite:
        failures.append(f"the optimized model produced {int((~np.isfinite(optimized)).sum()):,} NaN or infinite "
                        "outputs")
    outside = 0
    if atol is not None and rtol is not None:
        bound = atol + rtol * np.abs(original.astype(np.float64))
        outside = int((diff > bound).sum())
        if outside:
            where = np.unravel_index(int(np.argmax(diff - bound)), diff.shape)
            failures.append(f"{outside:,} of {diff.size:,} outputs differ by more than atol {atol:g} + rtol {rtol:g} "
                            f"x |original| (max abs diff {max_diff:.3e}; worst at row {where[0]}: "
                            f"{float(original[where]):.6f} -> {float(optimized[where]):.6f})")
    deltas: dict[str, dict[str, float]] = {}
    for name in sorted(set(metrics_before) & set(metrics_after)):
        before, after = float(metrics_before[name]), float(metrics_after[name])
        worse = (after - before) if name in LOWER_IS_BETTER else (before - after)
        deltas[name] = {"original": before, "optimized": after, "delta": after - before}
        if worse > max_metric_drop + 1e-12:
            failures.append(f"{name} {before:.4f} -> {after:.4f} ({after - before:+.4f}) on the test split, "
                            f"beyond max_metric_drop {max_metric_drop:g}")
    return Parity(len(original), max_diff, mean_diff, outside, atol, rtol, deltas, max_metric_drop, tuple(failures))
