"""Paired and unpaired tests against scipy / statsmodels and published values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import fisher_exact
from statsmodels.stats.contingency_tables import mcnemar

from robench.stats import (
    holm,
    mcnemar_exact,
    paired_comparison,
    paired_difference_interval,
    two_proportion_test,
)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (5, 0), (0, 7), (10, 3), (95, 63), (40, 41)])
def test_mcnemar_matches_statsmodels(b, c):
    expected = mcnemar([[100, b], [c, 100]], exact=True).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_known_value():
    # 10 vs 3 discordant pairs: 2 * P(Bin(13, 1/2) <= 3) = 2 * 378 / 8192.
    assert mcnemar_exact(10, 3) == pytest.approx(2 * 378 / 8192)


def test_paired_comparison_counts_and_direction():
    a = np.array([1, 1, 1, 0, 0, 1, 0, 1] * 25, dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0] * 25, dtype=bool)
    result = paired_comparison(a, b)
    assert (result.both, result.only_a, result.only_b, result.neither) == (50, 75, 25, 50)
    assert result.diff == pytest.approx(25.0)
    assert result.diff_lo < 25.0 < result.diff_hi
    assert result.p_value == pytest.approx(mcnemar([[50, 75], [25, 50]], exact=True).pvalue)
    with pytest.raises(ValueError):
        paired_comparison(a, b[:-1])


def test_paired_interval_agrees_with_wald_for_large_n():
    """For large n and a difference away from the edges, Newcombe's interval is the Wald one:
    (b - c)/n +- z sqrt((b + c) - (b - c)^2 / n) / n."""
    a, b, c, d = 40_000, 9_000, 6_000, 45_000
    n = a + b + c + d
    half = 1.959964 * np.sqrt((b + c) - (b - c) ** 2 / n) / n * 100
    lo, hi = paired_difference_interval(a, b, c, d)
    assert (lo, hi) == pytest.approx((3.0 - half, 3.0 + half), abs=0.01)


def test_paired_interval_covers_95_percent():
    """Simulated coverage of the true difference, n = 60 pairs, correlated flags."""
    rng = np.random.default_rng(0)
    hits, trials = 0, 2000
    p_a, p_b = 0.45, 0.35
    true = _true_difference(p_a, p_b)
    for _ in range(trials):
        shared = rng.random(60)
        fa, fb = shared < p_a, (shared + 0.3 * rng.standard_normal(60)) < p_b
        result = paired_comparison(fa, fb)
        hits += result.diff_lo <= true <= result.diff_hi
    assert 0.93 <= hits / trials <= 0.99


def _true_difference(p_a: float, p_b: float) -> float:
    """P(shared < p_a) - P(shared + 0.3 N(0, 1) < p_b), shared ~ U(0, 1), in points."""
    from scipy.integrate import quad
    from scipy.stats import norm

    p_fb, _ = quad(lambda u: norm.cdf((p_b - u) / 0.3), 0, 1)
    return 100 * (p_a - p_fb)


def test_paired_interval_edges():
    lo, hi = paired_difference_interval(0, 0, 0, 64)  # both always wrong: no difference
    assert lo < 0 < hi and lo > -10 and hi < 10
    lo, hi = paired_difference_interval(0, 64, 0, 0)  # A always right, B always wrong
    assert hi == pytest.approx(100.0) and lo > 90


def test_two_proportion_test_published_value():
    # Newcombe (1998), independent proportions, example (a): 56/70 - 48/80, method 10:
    # 0.0524 to 0.3339.
    result = two_proportion_test(100 * 56 / 70, 70, 100 * 48 / 80, 80)
    assert result.diff == pytest.approx(20.0)
    assert (result.diff_lo, result.diff_hi) == pytest.approx((5.24, 33.39), abs=0.01)
    assert result.p_value == pytest.approx(fisher_exact([[56, 14], [48, 32]]).pvalue)


def test_holm():
    reject, adjusted = holm([0.01, 0.04, 0.03, 0.2])
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert reject == [True, False, False, False]
    assert holm([]) == ([], [])
