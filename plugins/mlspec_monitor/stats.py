"""Drift statistics, pure numpy and math: no scipy at monitoring time, cross-checked against scipy and
Evidently in the tests (tests/plugins/test_monitor_stats.py).

Each method follows Evidently's definition and default threshold, so a verdict here is the verdict
Evidently's DataDriftPreset gives on the same data:

- `ks`: the two-sample Kolmogorov-Smirnov test; drift when p < 0.05.
- `wasserstein`: the first Wasserstein distance divided by the reference's standard deviation; > 0.1.
- `chi2`: Pearson's chi-squared test of the current counts against the reference's proportions; p < 0.05.
- `z`: the two-proportion z-test on the first category (two values); p < 0.05.
- `js`: the Jensen-Shannon distance (natural log) of binned distributions; >= 0.1.
- `psi`: the population stability index of binned distributions, zero bins filled; >= 0.25 (0.1 warns).

Binning, as Evidently's: a numeric feature with more than 20 distinct reference values is cut into
Sturges' bins over both samples together; anything else is binned by value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

P_VALUE = frozenset({"ks", "chi2", "z"})


@dataclass(frozen=True, slots=True)
class Verdict:
    method: str
    value: float  # a p-value (ks, chi2, z) or a distance
    threshold: float
    drifted: bool

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "value": round(self.value, 6), "threshold": self.threshold,
                "drifted": self.drifted}


def default_method(kind: str, reference_rows: int, distinct: int) -> str:
    """Evidently's choice for a feature: by its type, the reference's size and the distinct values of
    both samples together."""
    if reference_rows <= 1000:
        if kind == "numeric" and distinct > 5:
            return "ks"
        return "chi2" if distinct > 2 else "z"
    if kind == "numeric" and distinct > 5:
        return "wasserstein"
    return "js"


def judge(method: str, threshold: float, reference: Any, current: Any, numeric: bool) -> Verdict:
    """`reference` and `current`: numpy arrays (numeric) or {value: count} (categorical). With no value
    on either side nothing can have drifted: a p-value of 1, a distance of 0."""
    if _size(reference) == 0 or _size(current) == 0:
        return Verdict(method, 1.0 if method in P_VALUE else 0.0, threshold, False)
    value = _METHODS[method](reference, current, numeric)
    drifted = value < threshold if method in P_VALUE else value >= threshold
    return Verdict(method, float(value), threshold, bool(drifted))


def _size(values: Any) -> int:
    return int(sum(values.values())) if isinstance(values, Mapping) else len(values)


# -- the methods -----------------------------------------------------------------------------------


def ks_2samp(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The two-sided statistic D and its p-value: exact (lattice paths, Hodges 1958) when neither sample
    has more than 10,000 values, as scipy's `auto` does, else the asymptotic Kolmogorov distribution
    with Stephens' correction. A Monitor's samples are at most 10,000 values: its tests are exact."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    n, m = len(a), len(b)
    if not n or not m:
        return 0.0, 1.0
    both = np.concatenate([a, b])
    d = float(np.max(np.abs(np.searchsorted(a, both, side="right") / n - np.searchsorted(b, both, side="right") / m)))
    if max(n, m) <= 10_000:
        return d, _ks_exact(d, n, m)
    en = math.sqrt(n * m / (n + m))
    return d, _kolmogorov_sf((en + 0.12 + 0.11 / en) * d)


def _ks_exact(d: float, n: int, m: int) -> float:
    """P(D >= d) for samples of n and m: the share of the C(n+m, n) lattice paths from (0, 0) to (n, m)
    that leave the band |i/n - j/m| < d. One numpy pass per row of the lattice (the band is contiguous
    in each row, so a row is a cumulative sum); rows are rescaled as they go, the scale kept in logs."""
    if d <= 0:
        return 1.0
    if n > m:
        n, m = m, n
    lcm = n // math.gcd(n, m) * m
    bound = math.ceil(d * lcm - 1e-9)  # in units of 1/lcm: a path stays inside while |i*lcm/n - j*lcm/m| < bound
    step_i, step_j = lcm // n, lcm // m
    j = np.arange(m + 1, dtype=np.int64) * step_j
    row = np.cumprod(np.abs(j) < bound).astype(np.float64)  # i = 0: along j until the band is left
    log_scale = 0.0
    for i in range(1, n + 1):
        inside = np.flatnonzero(np.abs(i * step_i - j) < bound)
        new = np.zeros(m + 1)
        if len(inside):
            lo, hi = int(inside[0]), int(inside[-1])
            new[lo:hi + 1] = np.cumsum(row[lo:hi + 1])
        top = float(new.max())
        if top <= 0:
            return 1.0  # no path stays inside: D >= d for every one
        row = new / top
        log_scale += math.log(top)
    if row[m] <= 0:
        return 1.0
    log_total = math.lgamma(n + m + 1) - math.lgamma(n + 1) - math.lgamma(m + 1)
    return float(max(0.0, min(1.0, -math.expm1(math.log(row[m]) + log_scale - log_total))))


def _kolmogorov_sf(x: float) -> float:
    if x <= 0:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2 * (-1) ** (k - 1) * math.exp(-2 * k * k * x * x)
        total += term
        if abs(term) < 1e-12:
            break
    return max(0.0, min(1.0, total))


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """The first Wasserstein distance between two samples: the area between their CDFs."""
    a, b = np.sort(np.asarray(a, dtype=np.float64)), np.sort(np.asarray(b, dtype=np.float64))
    both = np.sort(np.concatenate([a, b]))
    deltas = np.diff(both)
    cdf_a = np.searchsorted(a, both[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, both[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas))


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for chi-squared with `dof` degrees of freedom: the regularised upper incomplete gamma."""
    if dof <= 0:
        return 1.0 if x <= 0 else 0.0
    return _gamma_q(dof / 2, x / 2)


def _gamma_q(a: float, x: float) -> float:
    if x <= 0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1:  # the series for P, then Q = 1 - P
        term = total = 1.0 / a
        k = a
        for _ in range(10_000):
            k += 1
            term *= x / k
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    b, c, d = x + 1 - a, 1 / 1e-300, 1 / (x + 1 - a)  # Lentz's continued fraction for Q
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return max(0.0, min(1.0, math.exp(log_front) * h))


def _proportions(reference: Any, current: Any, numeric: bool, fill: bool) -> tuple[np.ndarray, np.ndarray]:
    """Evidently's `get_binned_data`: Sturges bins over both samples for a numeric feature with more
    than 20 distinct reference values, else one bin per value; zero bins filled when `fill`."""
    if numeric and len(np.unique(reference)) > 20:
        edges = np.histogram_bin_edges(np.concatenate([reference, current]), bins="sturges")
        ref = np.histogram(reference, edges)[0] / len(reference)
        cur = np.histogram(current, edges)[0] / len(current)
    else:
        ref_counts, cur_counts = _counts(reference), _counts(current)
        keys = sorted(set(ref_counts) | set(cur_counts), key=str)
        ref_total, cur_total = sum(ref_counts.values()), sum(cur_counts.values())
        ref = np.array([ref_counts.get(k, 0) / ref_total for k in keys])
        cur = np.array([cur_counts.get(k, 0) / cur_total for k in keys])
    if fill:
        for shares in (ref, cur):
            smallest = shares[shares != 0].min() if (shares != 0).any() else 1.0
            shares[shares == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return ref, cur


def _counts(values: Any) -> Mapping[Any, int]:
    if isinstance(values, Mapping):
        return values
    found, counts = np.unique(np.asarray(values), return_counts=True)
    return {k.item() if hasattr(k, "item") else k: int(c) for k, c in zip(found, counts, strict=True)}


def psi(reference: Any, current: Any, numeric: bool) -> float:
    ref, cur = _proportions(reference, current, numeric, fill=True)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def jensen_shannon(reference: Any, current: Any, numeric: bool) -> float:
    p, q = _proportions(reference, current, numeric, fill=False)
    p, q = p / p.sum(), q / q.sum()
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log(p / mid), 0.0)
        right = np.where(q > 0, q * np.log(q / mid), 0.0)
    return float(math.sqrt(max(0.0, (left.sum() + right.sum()) / 2)))


def chi2_test(reference: Any, current: Any, numeric: bool) -> float:
    ref_counts, cur_counts = _counts(reference), _counts(current)
    keys = sorted(set(ref_counts) | set(cur_counts), key=str)
    scale = sum(cur_counts.values()) / sum(ref_counts.values())
    expected = np.array([ref_counts.get(k, 0) * scale for k in keys], dtype=np.float64)
    observed = np.array([cur_counts.get(k, 0) for k in keys], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(expected > 0, (observed - expected) ** 2 / expected, np.where(observed > 0, np.inf, 0.0))
    statistic = float(terms.sum())
    return 0.0 if math.isinf(statistic) else chi2_sf(statistic, len(keys) - 1)


def z_test(reference: Any, current: Any, numeric: bool) -> float:
    ref_counts, cur_counts = _counts(reference), _counts(current)
    keys = sorted(set(ref_counts) | set(cur_counts), key=str)
    if len(keys) <= 1:
        return 1.0
    n1, n2 = sum(ref_counts.values()), sum(cur_counts.values())
    p1, p2 = 1 - ref_counts.get(keys[0], 0) / n1, 1 - cur_counts.get(keys[0], 0) / n2  # Evidently's coding
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return 1.0
    return math.erfc(abs(p1 - p2) / spread / math.sqrt(2))


def _ks(reference: Any, current: Any, numeric: bool) -> float:
    return ks_2samp(reference, current)[1]


def _wasserstein_norm(reference: Any, current: Any, numeric: bool) -> float:
    return wasserstein(reference, current) / max(float(np.std(reference)), 0.001)


_METHODS = {"ks": _ks, "wasserstein": _wasserstein_norm, "chi2": chi2_test, "z": z_test, "js": jensen_shannon,
            "psi": psi}
