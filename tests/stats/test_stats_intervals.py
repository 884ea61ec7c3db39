"""Wilson intervals: the closed form, the edges, fractional counts (means of scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from robench.stats import interval_from_flags, wilson
from robench.stats.intervals import estimate, fill_intervals, interval_from_percent


def closed_form(k: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927), written out: (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)."""
    z = norm.ppf(1 - (1 - confidence) / 2)
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (100 * (centre - spread) / (1 + z * z / n), 100 * (centre + spread) / (1 + z * z / n))


@pytest.mark.parametrize(("k", "n"), [(0, 64), (64, 64), (13, 20), (325, 1000), (1, 3), (7.5, 20)])
def test_wilson_is_the_closed_form(k, n):
    assert wilson(k, n) == pytest.approx(closed_form(k, n), abs=1e-9)


def test_known_values():
    # 0 of 64: the upper end is z^2 / (n + z^2), the "rule of three"'s better cousin.
    assert wilson(0, 64) == pytest.approx((0.0, 5.6624), abs=1e-4)
    # 325 of 1000 (the quickstart's 32.5 % RA): 32.5 +2.9 -2.9.
    lo, hi = wilson(325, 1000)
    assert (round(lo, 1), round(hi, 1)) == (29.7, 35.5)
    assert estimate(32.5, lo, hi) == "32.5 \u00b1 3.0"


def test_edges():
    assert all(math.isnan(v) for v in wilson(0, 0))
    assert wilson(-1, 10)[0] == 0.0 and wilson(11, 10)[1] == pytest.approx(100.0)
    empty = interval_from_flags(np.zeros(0, dtype=bool))
    assert empty.n == 0 and math.isnan(empty.value)


def test_flags_and_percent_agree():
    flags = np.random.default_rng(0).random(200) < 0.3
    from_flags = interval_from_flags(flags)
    assert (from_flags.lo, from_flags.hi) == pytest.approx(wilson(int(flags.sum()), 200))
    assert interval_from_percent(from_flags.value, 200) == pytest.approx(
        (from_flags.lo, from_flags.hi)
    )


def test_mean_of_scores_is_conservative():
    """A mean of per-image scores in [0, 1] (12 attacks averaged): Wilson at n is no
    narrower than the normal interval of the scores themselves."""
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 13, 300) / 12
    interval = interval_from_flags(scores)
    normal = 1.96 * scores.std(ddof=1) / math.sqrt(len(scores)) * 100
    assert interval.half_width >= normal


def test_fill_intervals_leaves_no_number_without_one():
    row = {"ra": 25.0, "ta": None, "n_eval": 40}
    fill_intervals(row, ("ra", "ta"), lambda _m: row["n_eval"])
    assert (row["ra_lo"], row["ra_hi"]) == pytest.approx(wilson(10, 40))
    assert math.isnan(row["ta_lo"]) and math.isnan(row["ta_hi"])


def test_estimate_text():
    assert estimate(0.0, 0.0, 5.7) == "0.0 +5.7"  # at an edge: the one side there is
    assert estimate(100.0, 94.3, 100.0) == "100.0 -5.7"
    assert estimate(1.0, 0.4, 3.1) == "1.0 +2.1/-0.6"  # lopsided near an edge: both sides
    assert estimate(4.0, 3.0, 5.4) == "4.0 \u00b1 1.4"  # close enough to symmetric
    assert estimate(40.0, None, None) == "40.00"
    assert estimate(None) == "-"
