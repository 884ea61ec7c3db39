"""Attack budgets written the way papers write them ("8/255"), kept exact as strings.

Leaderboards carry eps both as the fraction string a reader recognises and as a float.
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


def format_eps(value: str | float) -> str:
    """The fraction string for an eps: "8/255" stays "8/255"; 8/255 as a float becomes "8/255"."""
    if isinstance(value, str) and "/" in value:
        num, den = (int(part) for part in value.split("/"))
        return f"{num}/{den}"
    eps = parse_eps(value)
    frac = Fraction(eps).limit_denominator(255 * 255)
    if frac.denominator != 0 and (frac * 255).denominator == 1:
        return f"{int(frac * 255)}/255"
    return f"{frac.numerator}/{frac.denominator}" if frac.denominator < 1000 else f"{eps:g}"
