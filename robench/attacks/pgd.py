"""Projected gradient descent (Madry et al. 2018), L-inf and L2, with a random start.

L-inf step: x <- clip_[0,1](x + proj_eps(alpha * sign(grad))). L2 step: move alpha along the
normalised gradient, project onto the L2 ball. Losses are summed over the batch so a step
does not depend on the batch size, and computed in float32 even under autocast.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robench.attacks.base import Attack
from robench.attacks.registry import ATTACKS
from robench.distributed import Shard
from robench.errors import ConfigError

_TINY = 1e-12

# (model outputs, targets) -> a scalar the attack ascends. The default is the summed
# cross-entropy; training objectives with several terms (the rotation-auxiliary baseline)
# attack their own loss.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PGD(Attack):
    shardable = True

    def __init__(
        self,
        eps: float,
        step_size: float,
        steps: int,
        *,
        norm: str = "linf",
        random_start: bool = True,
        restarts: int = 1,
        bn_mode: str = "eval",
    ) -> None:
        self.name = f"pgd-{norm}"
        self.norm = norm
        super().__init__(eps, bn_mode=bn_mode)
        if norm not in ("linf", "l2"):
            raise ConfigError(f"PGD norm {norm!r} must be 'linf' or 'l2'")
        if steps < 0 or restarts < 1 or step_size < 0:
            raise ConfigError(
                f"PGD needs steps >= 0, restarts >= 1, step_size >= 0 "
                f"(got {steps}, {restarts}, {step_size})"
            )
        if norm == "linf" and eps > 0.5:
            raise ConfigError(f"L-inf eps {eps:g} > 0.5 would allow any image")
        self.step_size = step_size
        self.steps = steps
        self.random_start = random_start
        self.restarts = restarts
        self.objective: Objective | None = None

    def with_objective(self, objective: Objective) -> PGD:
        """This attack, ascending `objective` instead of the cross-entropy of the outputs.

        With a custom objective "fooled" has no generic meaning, so there is one restart.
        """
        if self.restarts != 1:
            raise ConfigError("PGD with a custom objective runs one restart")
        attack = copy.copy(self)
        attack.objective = objective
        return attack

    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
        shard: Shard | None = None,
    ) -> torch.Tensor:
        best = x.clone()
        still_robust = torch.ones(len(x), dtype=torch.bool, device=x.device)
        for restart in range(self.restarts):
            x_adv = self._one_run(model, x, y, generator, shard)
            if self.restarts == 1:
                return x_adv
            # Keep, per example, the first restart that fools the model (AutoAttack's rule).
            with torch.no_grad(), self._autocast(x):
                wrong = model(x_adv).argmax(1) != y
            fooled = wrong.reshape(len(y), -1).any(1)  # (N, d) targets: any position wrong
            take = fooled & still_robust if restart else torch.ones_like(still_robust)
            best[take] = x_adv[take]
            still_robust &= ~fooled
        return best

    def _one_run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
        shard: Shard | None = None,
    ) -> torch.Tensor:
        if self.random_start:
            x_adv = (x + self._random_delta(x, generator, shard)).clamp_(0, 1)
        else:
            x_adv = x
        for _ in range(self.steps):
            x_adv = x_adv.detach().requires_grad_(True)
            with self._autocast(x):
                logits = model(x_adv)
            if self.objective is None:
                loss = F.cross_entropy(logits.float(), y, reduction="sum")
            else:
                loss = self.objective(logits, y)
            (grad,) = torch.autograd.grad(loss, x_adv)
            x_adv = self._project(x, x_adv.detach() + self.step_size * self._direction(grad))
        return x_adv.detach()

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
            norms = direction.flatten(1).norm(dim=1).clamp_min(_TINY).view(-1, 1, 1, 1)
            radius = torch.empty(n, 1, 1, 1, device=x.device, dtype=x.dtype).uniform_(
                0, 1, generator=generator
            )
            delta = direction / norms * radius * self.eps
        return delta if shard is None else shard.take(delta)

    def _direction(self, grad: torch.Tensor) -> torch.Tensor:
        if self.norm == "linf":
            return grad.sign()
        # A zero gradient gives a zero step, not NaN.
        norms = grad.flatten(1).norm(dim=1).clamp_min(_TINY).view(-1, 1, 1, 1)
        return grad / norms

    def _project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        delta = x_adv - x
        if self.norm == "linf":
            delta = delta.clamp(-self.eps, self.eps)
        else:
            norms = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            delta = delta * (self.eps / norms.clamp_min(_TINY)).clamp(max=1.0)
        return (x + delta).clamp(0, 1)


@ATTACKS.register("pgd")
def pgd(
    eps: float,
    step_size: float,
    steps: int,
    norm: str = "linf",
    random_start: bool = True,
    restarts: int = 1,
    bn_mode: str = "eval",
) -> PGD:
    return PGD(
        eps,
        step_size,
        steps,
        norm=norm,
        random_start=random_start,
        restarts=restarts,
        bn_mode=bn_mode,
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
