"""Attack budgets written the way papers write them ("8/255").

Suites and leaderboards keep the fraction string a reader recognises; code uses the float.
"""

from __future__ import annotations

from fractions import Fraction

from robench.errors import ConfigError


def parse_eps(value: str | float | int) -> float:
    """Parse "8/255", "0.03" or a number into a float in [0, 1]."""
    try:
        eps = float(Fraction(value.strip())) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"eps {value!r} is not a number or fraction such as 8/255") from None
    if not 0.0 <= eps <= 1.0:
        raise ConfigError(f"eps {value!r} = {eps:g} is outside [0, 1]; inputs live in [0, 1]")
    return eps
