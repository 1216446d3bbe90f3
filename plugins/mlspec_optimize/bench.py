"""Latency and throughput, original against optimized, at the spec's batch sizes, in the step itself.

The two models take turns in rounds (a block of calls of one, then of the other), so a burst of noise
from a neighbour on a shared machine lands on both instead of deciding the comparison. Each block
starts with an untimed call and follows a short pause: the other runtime's worker threads go idle, and
this one's wake, before the clock starts (on 2 cores, without that, whichever ran second paid for the
first's threads). p50 and p99 are of single calls; throughput is rows over the mean call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROUNDS = 5
PAUSE_S = 0.02


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    rows_per_second: float

    def to_json(self) -> dict[str, float]:
        return {"p50_ms": round(self.p50_ms, 4), "p99_ms": round(self.p99_ms, 4), "mean_ms": round(self.mean_ms, 4),
                "rows_per_second": round(self.rows_per_second, 1)}


def timing(seconds: Sequence[float], rows: int) -> Timing:
    import numpy as np

    values = np.asarray(seconds, dtype=np.float64) * 1e3
    mean = float(values.mean())
    return Timing(float(np.percentile(values, 50)), float(np.percentile(values, 99)), mean,
                  rows / (mean / 1e3) if mean > 0 else 0.0)


def compare(runners: Mapping[str, Callable[[], Any]], rows: int, *, warmup: int, iterations: int,
            cancelled: Callable[[], None] = lambda: None) -> dict[str, Timing]:
    """Each runner's timing over `iterations` calls (after `warmup`), in interleaved rounds."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    per_round = max(1, -(-iterations // ROUNDS))
    while any(len(t) < iterations for t in times.values()):
        cancelled()
        for name, run in runners.items():
            time.sleep(PAUSE_S)
            run()
            for _ in range(min(per_round, iterations - len(times[name]))):
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    return {name: timing(t, rows) for name, t in times.items()}


def speedups(results: Mapping[int, Mapping[str, Timing]]) -> dict[int, float]:
    """Per batch size: original p50 over optimized p50."""
    return {batch: (r["original"].p50_ms / r["optimized"].p50_ms if r["optimized"].p50_ms > 0 else 0.0)
            for batch, r in results.items()}
