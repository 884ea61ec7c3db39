"""PGD over several perturbations of one image at once, ascending one joint objective.

Ensemble pretraining (paper eq. 3) gives every task its own perturbation delta_i of the same
image, each in its own eps-ball, and maximises sum_i loss_i(x + delta_i) + lambda * g, where
the diversity term g couples the perturbations. Without the coupling (lambda = 0) the problem
separates, and this attack takes exactly the steps of M single-task PGD runs drawing their
random starts from the same generator one after the other. Start, step, projection, budget
check and autocast are PGD's own, inherited, so the two can never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from robench.attacks.base import input_gradients
from robench.attacks.pgd import PGD
from robench.attacks.registry import ATTACKS
from robench.errors import ConfigError

# (perturbed images, one per perturbation) -> the scalar to ascend (summed over the batch)
Objective = Callable[[list[torch.Tensor]], torch.Tensor]


@ATTACKS.register("multi_pgd")
class MultiPGD(PGD):
    """PGD with `count` perturbations ascending a joint objective; one restart."""

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
        super().__init__(
            eps,
            step_size,
            steps,
            norm=norm,
            random_start=random_start,
            restarts=restarts,
            bn_mode=bn_mode,
        )
        self.name = f"multi-pgd-{self.norm}"
        if self.restarts != 1:
            raise ConfigError(
                f"{self.name}: restarts must be 1 (a restart would have to pick one of "
                f"several coupled perturbations), got {self.restarts}"
            )

    def perturb_many(
        self,
        model: nn.Module,
        objective: Objective,
        x: torch.Tensor,
        count: int,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """`count` adversarial versions of x maximising `objective`; x is never modified.

        `model` holds every module the objective runs (its mode is set to the attack's
        BatchNorm mode while crafting and restored afterwards). Random starts are drawn in
        order, before the first step.
        """
        x = x.detach()
        with self.crafting(model):
            points = [
                (x + self._random_delta(x, generator)).clamp_(0, 1) if self.random_start else x
                for _ in range(count)
            ]
            for _ in range(self.steps):
                points = [p.detach().requires_grad_(True) for p in points]
                with self._autocast(x):
                    value = objective(points)
                grads = input_gradients(value, points)
                points = [
                    self._project(x, p.detach() + self.step_size * self._direction(g))
                    for p, g in zip(points, grads, strict=True)
                ]
        out = [p.detach() for p in points]
        for point in out:
            self._check_budget(x, point)
        return out
