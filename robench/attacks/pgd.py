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

from robench.attacks.base import input_gradients
from robench.attacks.norm_ball import NormBallAttack
from robench.attacks.registry import ATTACKS
from robench.distributed import Shard
from robench.errors import ConfigError

# (model outputs, targets) -> a scalar the attack ascends. The default is the summed
# cross-entropy; training objectives with several terms (the rotation-auxiliary baseline)
# attack their own loss.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@ATTACKS.register("pgd")
class PGD(NormBallAttack):
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
        super().__init__(eps, norm=norm, bn_mode=bn_mode)
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
            (grad,) = input_gradients(loss, [x_adv])
            x_adv = self._project(x, x_adv.detach() + self.step_size * self._direction(grad))
        return x_adv.detach()
