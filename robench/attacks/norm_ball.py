"""Attacks inside a pixel norm ball around the clean image: PGD, multi-perturbation PGD, AutoAttack.

The threat model is ||x_adv - x|| <= eps (L-inf or L2) and x_adv in [0, 1]. This class holds
its geometry once (a uniform random start in the ball, the steepest-ascent direction, the
projection back) and checks every result against it: one reduction and one host sync per
batch, cheap insurance against a projection bug.
"""

from __future__ import annotations

import torch

from robench.attacks.base import Attack
from robench.config.choices import Norm, choices
from robench.distributed import Shard
from robench.errors import ConfigError

TINY = 1e-12
BUDGET_SLACK = 1e-4  # relative, plus 1e-6 absolute: float32 rounding in the projection


class NormBallAttack(Attack):
    """An attack whose examples lie in the `norm` ball of radius eps (a fraction of [0, 1])."""

    def __init__(self, eps: float, *, norm: str = "linf", bn_mode: str = "eval") -> None:
        self.norm = norm
        super().__init__(bn_mode=bn_mode)
        if norm not in choices(Norm):
            raise ConfigError(f"{self.name}: norm {norm!r} must be one of {choices(Norm)}")
        if not 0.0 <= eps <= 1.0:
            raise ConfigError(f"{self.name}: eps {eps:g} is outside [0, 1]")
        self.eps = eps

    def _random_delta(
        self, x: torch.Tensor, generator: torch.Generator | None, shard: Shard | None = None
    ) -> torch.Tensor:
        """A uniform start in the ball; for a shard, the global batch's draw, sliced."""
        if shard is None:
            n, full = len(x), torch.empty_like(x)
        else:  # same shape and layout as the global batch: the same numbers as one process
            n = shard.total
            full = torch.empty(
                (n, *x.shape[1:]), device=x.device, dtype=x.dtype, memory_format=_layout(x)
            )
        if self.norm == "linf":
            delta = full.uniform_(-self.eps, self.eps, generator=generator)
        else:
            direction = full.normal_(generator=generator)
            norms = direction.flatten(1).norm(dim=1).clamp_min(TINY).view(-1, 1, 1, 1)
            radius = torch.empty(n, 1, 1, 1, device=x.device, dtype=x.dtype).uniform_(
                0, 1, generator=generator
            )
            delta = direction / norms * radius * self.eps
        return delta if shard is None else shard.take(delta)

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return grad.sign()
        # A zero gradient gives a zero step, not NaN.
        norms = grad.flatten(1).norm(dim=1).clamp_min(TINY).view(-1, 1, 1, 1)
        return grad / norms

    def _project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norms = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = delta * (self.eps / norms.clamp_min(TINY)).clamp(max=1.0)
        return (x + delta).clamp(0, 1)

    def _check_budget(self, x: torch.Tensor, x_adv: torch.Tensor) -> None:
        # The message's details are only computed when it fails.
        delta = (x_adv - x).flatten(1)
        size = delta.abs().amax(1) if self.norm == "linf" else delta.norm(dim=1)
        bound = self.eps * (1 + BUDGET_SLACK) + 1e-6
        ok = (size <= bound).all() & ((x_adv >= 0) & (x_adv <= 1)).all()
        if not bool(ok):
            worst = float(size.max()) if size.numel() else 0.0
            out_of_range = bool(((x_adv < 0) | (x_adv > 1)).any())
            raise RuntimeError(
                f"{self.name} left its threat model: |delta| = {worst:.6f} > eps {self.eps:.6f}"
                f" or values outside [0, 1] ({out_of_range})"
            )


def _layout(x: torch.Tensor) -> torch.memory_format:
    """The memory format `empty_like(x)` would give a tensor of x's full batch."""
    if (
        x.dim() == 4
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        return torch.channels_last
    return torch.contiguous_format
