"""The optimisation loop shared by the unforeseen attacks (after Kang et al. 2019).

Each unforeseen attack is three small pieces around one tensor of optimisation variables `v`
(one row per example): random initial variables (and fixed per-example randomness such as
kernels, in `context`), a differentiable `render(x, v, context) -> image in [0, 1]`, and an
ascent step that keeps `v` inside the attack's own budget. The loop here does the rest:

- untargeted: every step ascends the cross-entropy of the true label (Kang et al.'s code
  aimed at one random target class; that is a weaker evaluation);
- per example it keeps the best iterate seen: one that fools the model if any did (the
  highest-loss such iterate), otherwise the highest-loss iterate; the final iterate is
  evaluated too (one extra forward pass), so with no fooling iterate and a monotone loss the
  result is the last iterate;
- no host-device synchronisation inside the loop: the worst budget excess over all iterates
  is accumulated on the device and checked once at the end;
- the model runs under `amp_dtype` autocast when set; rendering and the loss are float32.

Strengths are on Kang et al.'s scales (see each family's `strength_unit`), not a pixel ball:
the budget is checked on the variables (`budget_excess`), and the image must keep its shape and
stay finite and inside [0, 1] (`_check_budget`, the base class's per-batch threat-model check).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from robench.attacks.base import Attack, input_gradients
from robench.errors import ConfigError

TINY = 1e-12
"""Floor for every denominator (min-max ranges, norms): a constant map or zero gradient
gives a zero step or a flat map, never NaN."""

BUDGET_TOLERANCE = 1e-4
"""Relative slack of the end-of-run budget check (float32 rounding in projections)."""

VAR_STEP_NUMERATOR = math.sqrt(1e-3)
"""Default sign-step for fog, snow and gabor variables is VAR_STEP_NUMERATOR / sqrt(steps).

advex-uar's calibrated runs of these three attacks all used step 0.002236 with 200 steps,
which is sqrt(1e-3 / 200); the 1/sqrt(steps) rule (as for pixel, JPEG and elastic attacks)
extends it to other step counts (10 steps -> 0.01)."""


def eps_step(eps: float, steps: int) -> float:
    """Kang et al.'s default step for pixel, JPEG and elastic attacks: eps / sqrt(steps)."""
    return eps / math.sqrt(max(steps, 1))


def var_step(steps: int) -> float:
    """Default step for the fog, snow and gabor variables (see VAR_STEP_NUMERATOR)."""
    return VAR_STEP_NUMERATOR / math.sqrt(max(steps, 1))


def uniform(
    shape: tuple[int, ...], x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """U[0, 1) float32 on x's device, drawn from `generator` (which lives on that device)."""
    return torch.rand(shape, generator=generator, device=x.device, dtype=torch.float32)


def gaussian_kernel_1d(size: int, std: torch.Tensor) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, one row per entry of `std` (shape (..., size))."""
    offsets = torch.arange(size, device=std.device, dtype=torch.float32) - (size - 1) / 2
    taps = torch.exp(-0.5 * (offsets / std.unsqueeze(-1)) ** 2)
    return taps / taps.sum(-1, keepdim=True)


def minmax_normalise(m: torch.Tensor, detach_range: bool = False) -> torch.Tensor:
    """Map each example (dim 0) of `m` to [0, 1]; a constant map becomes all zeros."""
    flat = m.flatten(1)
    lo, hi = flat.amin(1), flat.amax(1)
    if detach_range:
        lo, hi = lo.detach(), hi.detach()
    shape = (-1,) + (1,) * (m.dim() - 1)
    return (m - lo.view(shape)) / (hi - lo).clamp_min(TINY).view(shape)


@dataclass
class UnforeseenResult:
    """One run: the returned images and the variables (and fixed randomness) that made them."""

    x_adv: torch.Tensor  # same shape and dtype as x, in [0, 1]
    variables: torch.Tensor  # the optimisation variables of each returned iterate (N, ...)
    context: dict[str, torch.Tensor]  # per-example fixed randomness (kernels, masks, ...)
    fooled: torch.Tensor  # bool (N,): the returned iterate fooled the model while crafting
    budget_excess: torch.Tensor  # 0-dim: worst budget excess over all iterates (0 = inside)


class UnforeseenAttack(Attack):
    """Base of the unforeseen attacks: `eps` is a strength on Kang et al.'s scale."""

    name = ""
    strength_unit = ""  # what eps measures, in words (each family sets it)

    def __init__(
        self,
        eps: float,
        steps: int = 200,
        step_size: float | None = None,
        *,
        bn_mode: str = "eval",
    ) -> None:
        super().__init__(bn_mode=bn_mode)
        # A strength on Kang et al.'s scale (fog 256), not a fraction of [0, 1].
        if not (math.isfinite(eps) and eps >= 0):
            raise ConfigError(f"{self.name}: strength {eps!r} must be finite and >= 0")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ConfigError(f"{self.name}: steps must be an integer >= 0 (got {steps!r})")
        if step_size is not None and not (math.isfinite(step_size) and step_size > 0):
            raise ConfigError(f"{self.name}: step_size must be > 0 (got {step_size!r})")
        self.eps = float(eps)
        self.steps = steps
        self.step_size = self.default_step_size() if step_size is None else float(step_size)

    # ---- what a family provides -------------------------------------------------------------

    @abstractmethod
    def default_step_size(self) -> float:
        """Kang et al.'s default step for this family, given self.eps and self.steps."""

    @abstractmethod
    def init_variables(
        self, x: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Random initial variables (inside the budget) and fixed per-example randomness."""

    @abstractmethod
    def render(
        self, x: torch.Tensor, v: torch.Tensor, context: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The attacked image in [0, 1] (float32, differentiable in v)."""

    @abstractmethod
    def ascend(
        self, v: torch.Tensor, grad: torch.Tensor, context: dict[str, torch.Tensor], it: int
    ) -> torch.Tensor:
        """One ascent step on the loss, projected back into the budget."""

    @abstractmethod
    def budget_excess(self, v: torch.Tensor, context: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per example (N,), how far v lies outside the budget relative to it; 0 inside."""

    # ---- the shared loop --------------------------------------------------------------------

    def run(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> UnforeseenResult:
        """Attack (x, y) like `perturb`, returning the variables behind the images too."""
        with self.crafting(model):
            result = self._optimise(model, x.detach(), y, generator)
        self._check_variables(result)
        self._check_budget(x, result.x_adv)
        return result

    def _perturb(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        result = self._optimise(model, x, y, generator)
        self._check_variables(result)
        return result.x_adv

    def _optimise(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None,
    ) -> UnforeseenResult:
        if x.dim() != 4:
            raise ValueError(f"{self.name}: expected NCHW images, got shape {tuple(x.shape)}")
        x32 = x.float()
        n = len(x)
        v, context = self.init_variables(x32, generator)
        best_x, best_v = x32.clone(), v.detach().clone()
        best_fooled = torch.zeros(n, dtype=torch.bool, device=x.device)
        best_loss = torch.full((n,), -math.inf, device=x.device)
        excess = torch.zeros((), device=x.device)
        for it in range(self.steps + 1):
            v = v.detach().requires_grad_(it < self.steps)
            x_cur = self.render(x32, v, context)
            with self._autocast(x):
                logits = model(x_cur)
            loss = F.cross_entropy(logits.float(), y, reduction="none").reshape(n, -1).sum(1)
            with torch.no_grad():
                fooled = (logits.argmax(1) != y).reshape(n, -1).any(1)
                better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (loss > best_loss))
                best_x = torch.where(better.view(-1, 1, 1, 1), x_cur, best_x)
                best_v = torch.where(better.view((-1,) + (1,) * (v.dim() - 1)), v, best_v)
                best_loss = torch.where(better, loss, best_loss)
                best_fooled |= fooled
                excess = torch.maximum(excess, self.budget_excess(v, context).amax())
            if it == self.steps:
                break
            (grad,) = input_gradients(loss.sum(), [v])
            with torch.no_grad():
                v = self.ascend(v.detach(), grad, context, it)
        return UnforeseenResult(
            x_adv=best_x.detach().to(x.dtype),
            variables=best_v.detach(),
            context=context,
            fooled=best_fooled,
            budget_excess=excess,
        )

    def _check_variables(self, result: UnforeseenResult) -> None:
        # One host synchronisation per batch (a NaN excess fails too).
        if not bool(result.budget_excess <= BUDGET_TOLERANCE):
            raise RuntimeError(
                f"{self.name} left its threat model at strength {self.eps:g}: variables over "
                f"their budget by {float(result.budget_excess):.3g} (relative)"
            )

    def _check_budget(self, x: torch.Tensor, x_adv: torch.Tensor) -> None:
        """The image side of the threat model: same shape, finite, inside [0, 1]."""
        if x_adv.shape != x.shape:
            raise RuntimeError(f"{self.name} changed the shape {tuple(x.shape)}")
        if not bool((torch.isfinite(x_adv) & (x_adv >= 0) & (x_adv <= 1)).all()):
            raise RuntimeError(
                f"{self.name} left its threat model at strength {self.eps:g}: the image is not "
                "finite and inside [0, 1]"
            )
