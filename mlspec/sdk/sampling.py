"""A seeded, fixed-size uniform sample of a stream: what a profile keeps of a column that does not fit
in memory (the Dataset plugin's quantiles, a Monitor's reference and current windows)."""

from __future__ import annotations

from typing import Any

import numpy as np


class Reservoir:
    """Algorithm R, vectorised: after n values, each of them is in the sample with probability k/n.
    The random numbers come from the caller's generator, so the same data and seed give the same
    sample, wherever it is drawn."""

    def __init__(self, capacity: int, rng: Any) -> None:
        self.capacity, self.rng = capacity, rng
        self.values = np.empty(capacity, dtype=np.float64)
        self.seen = 0

    def add(self, values: np.ndarray) -> None:
        fill = min(self.capacity - self.seen, len(values)) if self.seen < self.capacity else 0
        if fill > 0:
            self.values[self.seen:self.seen + fill] = values[:fill]
            self.seen += fill
            values = values[fill:]
        if len(values):
            positions = self.seen + np.arange(1, len(values) + 1)  # how many values have been seen at each
            slots = (self.rng.random(len(values)) * positions).astype(np.int64)
            keep = slots < self.capacity
            self.values[slots[keep]] = values[keep]  # a later value in the same slot wins, as in R
            self.seen += len(values)

    def sample(self) -> np.ndarray:
        return self.values[:min(self.seen, self.capacity)]
