"""The Monitor's statistics against scipy's on the same samples, and its verdicts against Evidently's
(DataDriftPreset's column tests, default choice and thresholds) on the same data. scipy and Evidently
are test dependencies only (the `crosscheck` extra): monitoring itself needs numpy alone."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from mlspec_monitor import stats

scipy_stats = pytest.importorskip("scipy.stats")
from scipy.spatial import distance  # noqa: E402

RNG = np.random.default_rng(7)


@pytest.mark.parametrize(("n", "m", "shift"), [(40, 60, 0.0), (40, 60, 0.8), (300, 250, 0.1), (2000, 5000, 0.05),
                                                (2000, 5000, 0.0), (800, 12, 1.0), (472, 1706, 0.09)])
def test_ks_matches_scipy_exactly_up_to_10000_values(n: int, m: int, shift: float) -> None:
    a, b = RNG.normal(0, 1, n), RNG.normal(shift, 1, m)
    d, p = stats.ks_2samp(a, b)
    expected = scipy_stats.ks_2samp(a, b)  # `auto`: exact while neither sample passes 10,000
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p == pytest.approx(expected.pvalue, rel=1e-6, abs=1e-10)


def test_ks_beyond_10000_values_is_asymptotic_and_close() -> None:
    a, b = RNG.normal(0, 1, 12_000), RNG.normal(0.03, 1, 15_000)
    assert stats.ks_2samp(a, b)[1] == pytest.approx(scipy_stats.ks_2samp(a, b).pvalue, rel=0.05, abs=2e-3)


def test_wasserstein_chi2_and_js_match_scipy() -> None:
    a, b = RNG.gamma(2, 1, 3000), RNG.gamma(2.3, 1.1, 4000)
    assert stats.wasserstein(a, b) == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-9)
    for x, dof in ((0.5, 1), (3.8, 1), (12.0, 5), (150.0, 99), (1e-6, 3), (900.0, 40)):
        assert stats.chi2_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-7, abs=1e-300)
    p, q = RNG.dirichlet(np.ones(12)), RNG.dirichlet(np.ones(12))
    ref, cur = {str(i): int(v * 10_000) for i, v in enumerate(p)}, {str(i): int(v * 10_000) for i, v in enumerate(q)}
    keys = sorted(ref, key=str)
    expected = distance.jensenshannon([ref[k] for k in keys], [cur[k] for k in keys])
    assert stats.jensen_shannon(ref, cur, numeric=False) == pytest.approx(expected, rel=1e-9)
    f_obs = np.array([cur[k] for k in keys], dtype=float)
    f_exp = np.array([ref[k] for k in keys], dtype=float) * f_obs.sum() / sum(ref.values())
    assert stats.chi2_test(ref, cur, numeric=False) == pytest.approx(scipy_stats.chisquare(f_obs, f_exp).pvalue,
                                                                     rel=1e-6, abs=1e-300)


def test_defaults_follow_evidently() -> None:
    assert stats.default_method("numeric", 1000, 300) == "ks"
    assert stats.default_method("numeric", 1001, 300) == "wasserstein"
    assert stats.default_method("numeric", 500, 4) == "chi2"
    assert stats.default_method("categorical", 500, 2) == "z"
    assert stats.default_method("categorical", 5000, 40) == "js"


def _cases() -> list[tuple[str, object, object]]:
    rng = np.random.default_rng(11)
    found: list[tuple[str, object, object]] = []
    for n, shift in ((600, 0.0), (600, 0.4), (5000, 0.0), (5000, 0.15), (5000, 0.5)):
        found.append(("num", rng.normal(0, 1, n), rng.normal(shift, 1, 3000)))
    for n, tilt in ((700, 0.0), (700, 0.3), (4000, 0.0), (4000, 0.25)):
        probs = np.array([0.5, 0.3, 0.2])
        moved = np.array([0.5 - tilt, 0.3, 0.2 + tilt])
        found.append(("cat", rng.choice(["a", "b", "c"], n, p=probs), rng.choice(["a", "b", "c"], 2500, p=moved)))
    for tilt in (0.0, 0.1):
        found.append(("cat", rng.choice(["yes", "no"], 800, p=[0.6, 0.4]),
                      rng.choice(["yes", "no"], 900, p=[0.6 - tilt, 0.4 + tilt])))
    return found


def test_verdicts_are_evidentlys_on_the_same_data() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("evidently")
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    for kind, reference, current in _cases():
        ref_series, cur_series = pd.Series(reference), pd.Series(current)
        column_type = ColumnType.Numerical if kind == "num" else ColumnType.Categorical
        test = get_stattest(ref_series, cur_series, column_type, None)
        score, drifted = test.func(ref_series, cur_series, column_type, test.default_threshold)
        numeric = kind == "num"
        distinct = len(np.unique(np.concatenate([reference, current]))) if numeric else len(set(reference) | set(current))
        method = stats.default_method("numeric" if numeric else "categorical", len(reference), distinct)
        ours_ref = reference if numeric else Counter(map(str, reference))
        ours_cur = current if numeric else Counter(map(str, current))
        verdict = stats.judge(method, test.default_threshold, ours_ref, ours_cur, numeric)
        assert {"ks": "ks", "wasserstein": "wasserstein", "chisquare": "chi2", "z": "z",
                "jensenshannon": "js"}[test.name] == method
        assert verdict.drifted == bool(drifted), (kind, method, verdict, score)
        assert verdict.value == pytest.approx(score, rel=0.05, abs=2e-3), (kind, method)


def test_psi_is_evidentlys() -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("evidently")
    from evidently.legacy.calculations.stattests.psi import _psi
    from evidently.legacy.core import ColumnType

    rng = np.random.default_rng(3)
    reference, current = rng.normal(0, 1, 4000), rng.normal(0.3, 1.2, 3000)
    theirs, _ = _psi(pd.Series(reference), pd.Series(current), ColumnType.Numerical, 0.1)
    assert stats.psi(reference, current, numeric=True) == pytest.approx(theirs, rel=1e-9)
