"""95% intervals on accuracies: the Wilson score interval, in percent.

Wilson rather than the normal (Wald) interval because robustness numbers sit near 0 % and
100 % on small subsets, where Wald's interval collapses to a point or leaves [0, 100]; rather
than Clopper-Pearson because that one is conservative by design (its coverage is above 95 %,
often well above). statsmodels computes it (`proportion_confint(method="wilson")`).

An accuracy that is a mean over several evaluations of the same n images (the 12 unforeseen
attacks, 15 corruptions x 5 severities) is a mean of per-image scores in [0, 1]. Such a
score's variance is at most mean * (1 - mean), the variance of one flag, so the Wilson
interval at that mean and n is a valid, conservative interval for it too.

What an interval covers: the sampling of test images (which n images were drawn). What it
does not: seed-to-seed variance of training, which needs several trained models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
INTERVAL_METHOD = "wilson"  # named in leaderboards/README.md and in every report


@dataclass(frozen=True)
class Interval:
    """An estimate in % and its interval (lo <= value <= hi), from `n` examples."""

    value: float
    lo: float
    hi: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2


def wilson(successes: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of successes / n, in percent; (nan, nan) for n = 0.

    `successes` may be fractional: a mean of per-example scores in [0, 1] times n (see the
    module's docstring).
    """
    if n <= 0 or not math.isfinite(successes):
        return (math.nan, math.nan)
    from statsmodels.stats.proportion import proportion_confint

    k = min(max(float(successes), 0.0), float(n))
    lo, hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    return (float(lo) * 100, float(hi) * 100)


def interval_from_percent(value: float, n: int) -> tuple[float, float]:
    """The interval of an accuracy in % measured on n examples (the count is value * n / 100;
    a whole count when the accuracy is one evaluation's)."""
    if value is None or not math.isfinite(float(value)) or n <= 0:
        return (math.nan, math.nan)
    successes = float(value) * n / 100
    nearest = round(successes)
    if abs(successes - nearest) < 1e-6:
        successes = nearest  # float rounding of k / n * 100 undone
    return wilson(successes, n)


def estimate(value: object, lo: object = None, hi: object = None) -> str:
    """An accuracy with its 95% interval, short enough for a table cell: `32.5 ± 2.9`;
    `0.0 +5.7` (or `100.0 -5.7`) at an edge; `4.0 +1.6/-1.0` where the interval is lopsided;
    two decimals and no interval where there is none."""
    if _missing(value) or value == "":
        return "-"
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    try:
        low, high = float(lo), float(hi)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{v:.2f}"
    if math.isnan(low) or math.isnan(high):
        return f"{v:.2f}"
    up, down = round(high - v, 1), round(v - low, 1)
    if down <= 0:
        return f"{v:.1f} +{up:.1f}"
    if up <= 0:
        return f"{v:.1f} -{down:.1f}"
    if max(up, down) <= 1.5 * min(up, down):
        return f"{v:.1f} \u00b1 {max(up, down):.1f}"
    return f"{v:.1f} +{up:.1f}/-{down:.1f}"


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def interval_from_flags(flags: np.ndarray) -> Interval:
    """An accuracy and its interval from per-example flags (bool, or scores in [0, 1])."""
    scores = np.asarray(flags, dtype=float)
    n = len(scores)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    lo, hi = wilson(float(scores.sum()), n)
    return Interval(float(scores.mean()) * 100, lo, hi, n)


def fill_intervals(row: dict, metrics: Iterable[str], n_of: Callable[[str], object]) -> None:
    """Set `<m>_lo` and `<m>_hi` of every metric m of `row` from its value and n_of(m) images
    (missing values and an unknown n give empty intervals)."""
    for metric in metrics:
        value, n = row.get(metric), n_of(metric)
        lo = hi = math.nan
        if _known(value) and _known(n):
            lo, hi = interval_from_percent(float(value), int(n))  # type: ignore[arg-type]
        row[metric + "_lo"], row[metric + "_hi"] = lo, hi


def _known(value: object) -> bool:
    if value is None:
        return False
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def fill_frame_intervals(
    frame: pd.DataFrame, metrics: Iterable[str], n_column: Callable[[str], str]
) -> pd.DataFrame:
    """`frame` with `<m>_lo`/`<m>_hi` (re)computed for every metric m from m and the column
    `n_column(m)` (derived tables: the interval follows from the number and its n)."""
    out = frame.copy()
    records = out.to_dict("records")
    metrics = [m for m in metrics if m in out.columns]
    for record in records:
        fill_intervals(record, metrics, lambda m, r=record: r.get(n_column(m)))
    for metric in metrics:
        for end in ("_lo", "_hi"):
            out[metric + end] = [float(r[metric + end]) for r in records]
    return out
