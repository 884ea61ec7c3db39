"""The statistics every number needs: intervals on accuracies, paired and unpaired tests.

Pure arithmetic on counts and per-example flags (no torch, no files), at the bottom of the
package so that the stages that make rows and the results layer that judges them share one
definition. The tests of this package check it against scipy and statsmodels on known cases.
"""

from robench.stats.intervals import (
    CONFIDENCE,
    INTERVAL_METHOD,
    Interval,
    interval_from_flags,
    wilson,
)
from robench.stats.tests import (
    PairedComparison,
    TwoProportionTest,
    holm,
    mcnemar_exact,
    paired_comparison,
    paired_difference_interval,
    two_proportion_test,
)

__all__ = [
    "CONFIDENCE",
    "INTERVAL_METHOD",
    "Interval",
    "PairedComparison",
    "TwoProportionTest",
    "holm",
    "interval_from_flags",
    "mcnemar_exact",
    "paired_comparison",
    "paired_difference_interval",
    "two_proportion_test",
    "wilson",
]
