"""Square Attack (Andriushchenko et al. 2020), L-inf or L2, through the `pyautoattack` package.

A score-based, gradient-free attack: random square-shaped updates at the corners of the
budget, kept when they lower the margin between the true class and the best other one. It
never reads a gradient, so a model that hides its gradients (NaN or zero input gradients,
a detached or quantised input, a saturated softmax) stops PGD but not Square. That makes it
the evaluations' cross-check for gradient masking (robench/eval/suites/cross_check.py): a few
hundred queries on a fixed, seeded subset cost a small fraction of PGD-20, and points Square
fools but PGD did not are the signature of masking.

pyautoattack seeds torch's global generator inside `perturb`; robench runs it inside
`torch.random.fork_rng`, seeded from the evaluation's per-batch generator, so the attack is
reproducible per batch and the caller's random state is left as it was.
"""

from __future__ import annotations

import torch
from torch import nn

from robench.attacks.autoattack import AutocastLogits
from robench.attacks.base import generator_seed, own_global_rng
from robench.attacks.norm_ball import NormBallAttack
from robench.attacks.registry import ATTACKS
from robench.errors import ConfigError

NORMS = {"linf": "Linf", "l2": "L2"}


@ATTACKS.register("square")
class Square(NormBallAttack):
    """Untargeted Square Attack with the margin loss and pyautoattack's p schedule."""

    seed_stream = 17

    def __init__(
        self,
        eps: float,
        *,
        queries: int = 300,
        norm: str = "linf",
        p_init: float = 0.8,
        restarts: int = 1,
        bn_mode: str = "eval",
    ) -> None:
        self.name = f"square-{norm}"
        super().__init__(eps, norm=norm, bn_mode=bn_mode)
        if queries < 1 or restarts < 1:
            raise ConfigError(f"square: queries and restarts must be >= 1 ({queries}, {restarts})")
        if not 0 < p_init <= 1:
            raise ConfigError(f"square: p_init must be in (0, 1], got {p_init}")
        self.queries = queries
        self.p_init = p_init
        self.restarts = restarts

    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        from pyautoattack.square import SquareAttack

        if self.eps == 0 or len(x) == 0:
            return x.clone()
        seed = generator_seed(generator)
        wrapped = AutocastLogits(model, lambda: self._autocast(x)).eval()
        attack = SquareAttack(
            wrapped,
            norm=NORMS[self.norm],
            n_queries=self.queries,
            eps=self.eps,
            p_init=self.p_init,
            n_restarts=self.restarts,
            seed=seed,
            loss="margin",
            device=x.device,
        )
        with own_global_rng(x), torch.no_grad():
            x_adv = attack.perturb(x.contiguous(), y)
        return x_adv.to(x.dtype)
