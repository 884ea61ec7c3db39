"""Attacks on [0, 1] inputs; every attack is one file registered in `ATTACKS`."""

from robench.attacks import pgd as _pgd  # noqa: F401  (registers "pgd")
from robench.attacks import unforeseen as _unforeseen  # noqa: F401  (fog, snow, ..., jpeg_l1)
from robench.attacks.base import Attack, model_mode
from robench.attacks.pgd import PGD
from robench.attacks.registry import ATTACKS

__all__ = ["ATTACKS", "PGD", "Attack", "model_mode"]
