"""Is one accuracy really higher than another? Paired tests on shared images, unpaired on counts.

Two models evaluated on the same images are compared image by image: only the discordant
pairs carry information (b: A right and B wrong; c: A wrong and B right), and the exact
McNemar test asks whether b and c differ more than fair coin flips would (a two-sided binomial
test of b out of b + c at 1/2; scipy's `binomtest`). The paired difference in accuracy gets
Newcombe's (1998) hybrid score interval for paired proportions (his method 10), built from the
two Wilson intervals and the correlation of the pairs: it stays inside [-100, 100] and does not
collapse at 0 or n discordant pairs, as the Wald interval does.

Two accuracies with no shared images (two boards' rows without stored flags) are compared from
their counts: Fisher's exact test, and the Newcombe interval for independent proportions
(statsmodels' `confint_proportions_2indep(method="newcomb")`).

Several claims judged at once are corrected for multiplicity with Holm's step-down method
(statsmodels' `multipletests(method="holm")`), which controls the family-wise error rate
without assuming the tests are independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robench.stats.intervals import CONFIDENCE, wilson


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value of b vs c discordant pairs (1.0 when there are none)."""
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be >= 0")
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(int(b), int(b + c), 0.5).pvalue)


def paired_difference_interval(
    a: int, b: int, c: int, d: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Newcombe's method-10 interval of p_A - p_B, in points, from the 2x2 table of pairs.

    a: both right, b: A right and B wrong, c: A wrong and B right, d: both wrong.
    """
    n = a + b + c + d
    if n == 0:
        return (math.nan, math.nan)
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = (v / 100 for v in wilson(a + b, n, confidence))
    l2, u2 = (v / 100 for v in wilson(a + c, n, confidence))
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins > 0 else 0.0
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    diff = p1 - p2
    lo = max(diff - math.sqrt(max(below, 0.0)), -1.0)
    hi = min(diff + math.sqrt(max(above, 0.0)), 1.0)
    return (lo * 100, hi * 100)


@dataclass(frozen=True)
class PairedComparison:
    """A vs B on the same n images: accuracies, difference with its interval, McNemar's p."""

    n: int
    acc_a: float
    acc_b: float
    both: int  # a: right for both
    only_a: int  # b: A right, B wrong
    only_b: int  # c: A wrong, B right
    neither: int  # d
    diff_lo: float
    diff_hi: float
    p_value: float
    test: str = "exact McNemar (two-sided)"

    @property
    def diff(self) -> float:
        return self.acc_a - self.acc_b


def paired_comparison(flags_a: np.ndarray, flags_b: np.ndarray) -> PairedComparison:
    """Compare two models' per-example flags on the same images (same order, same length)."""
    fa, fb = np.asarray(flags_a, dtype=bool), np.asarray(flags_b, dtype=bool)
    if fa.shape != fb.shape or fa.ndim != 1:
        raise ValueError(f"flags of different images: shapes {fa.shape} and {fb.shape}")
    a, b = int(np.sum(fa & fb)), int(np.sum(fa & ~fb))
    c, d = int(np.sum(~fa & fb)), int(np.sum(~fa & ~fb))
    n = len(fa)
    lo, hi = paired_difference_interval(a, b, c, d)
    return PairedComparison(
        n=n,
        acc_a=100 * (a + b) / n if n else math.nan,
        acc_b=100 * (a + c) / n if n else math.nan,
        both=a,
        only_a=b,
        only_b=c,
        neither=d,
        diff_lo=lo,
        diff_hi=hi,
        p_value=mcnemar_exact(b, c),
    )


@dataclass(frozen=True)
class TwoProportionTest:
    """Two accuracies measured on different (or unknown) images, compared from their counts."""

    acc_a: float
    n_a: int
    acc_b: float
    n_b: int
    diff_lo: float
    diff_hi: float
    p_value: float
    test: str = "Fisher's exact (two-sided, from counts)"

    @property
    def diff(self) -> float:
        return self.acc_a - self.acc_b


def two_proportion_test(acc_a: float, n_a: int, acc_b: float, n_b: int) -> TwoProportionTest:
    """Fisher's exact test and Newcombe's interval of acc_a - acc_b (accuracies in %)."""
    if n_a <= 0 or n_b <= 0:
        raise ValueError("both accuracies need at least one example")
    from scipy.stats import fisher_exact
    from statsmodels.stats.proportion import confint_proportions_2indep

    k_a, k_b = round(acc_a * n_a / 100), round(acc_b * n_b / 100)
    table = [[k_a, n_a - k_a], [k_b, n_b - k_b]]
    p = float(fisher_exact(table).pvalue)
    lo, hi = confint_proportions_2indep(
        k_a, n_a, k_b, n_b, method="newcomb", compare="diff", alpha=1 - CONFIDENCE
    )
    return TwoProportionTest(acc_a, n_a, acc_b, n_b, float(lo) * 100, float(hi) * 100, p)


def holm(p_values: list[float], alpha: float = 0.05) -> tuple[list[bool], list[float]]:
    """Holm's step-down correction: which hypotheses are rejected, and the adjusted p-values."""
    if not p_values:
        return [], []
    from statsmodels.stats.multitest import multipletests

    reject, adjusted, _, _ = multipletests(p_values, alpha=alpha, method="holm")
    return [bool(r) for r in reject], [float(p) for p in adjusted]
