"""Attacks on [0, 1] inputs; every attack is one file registered in `ATTACKS`.

base.py        Attack: the model's mode while crafting, gradients on, an abstract budget check
norm_ball.py   NormBallAttack: the pixel eps-ball (random start, projection, budget check)
pgd.py         PGD, L-inf and L2 ("pgd"); multi_pgd.py: one perturbation per task ("multi_pgd")
autoattack.py  AutoAttack standard through pyautoattack ("autoattack"; rank 0 only)
square.py      Square, gradient-free, through pyautoattack ("square"; the masking cross-check)
unforeseen/    the 12 unforeseen attacks of Kang et al. (fog, snow, gabor, elastic, jpeg_*)
factory.py     build_attack: a spec (name + parameters) -> ATTACKS, the one way to make one
"""

from robench.attacks import autoattack as _autoattack  # noqa: F401  (registers "autoattack")
from robench.attacks import multi_pgd as _multi_pgd  # noqa: F401  (registers "multi_pgd")
from robench.attacks import pgd as _pgd  # noqa: F401  (registers "pgd")
from robench.attacks import square as _square  # noqa: F401  (registers "square")
from robench.attacks import torchattacks_bridge as _bridge  # noqa: F401  (registers "torchattacks")
from robench.attacks import unforeseen as _unforeseen  # noqa: F401  (fog, snow, ..., jpeg_l1)
from robench.attacks.base import Attack, model_mode
from robench.attacks.factory import build_attack
from robench.attacks.norm_ball import NormBallAttack
from robench.attacks.pgd import PGD
from robench.attacks.registry import ATTACKS

__all__ = ["ATTACKS", "PGD", "Attack", "NormBallAttack", "build_attack", "model_mode"]
