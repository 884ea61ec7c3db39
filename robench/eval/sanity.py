"""Checks that make a robustness number trustworthy before any attack runs.

After AutoAttack's own checks (Croce & Hein 2020, flags_doc): a model that is randomised or
stays in training mode gives attacks a moving target, so its numbers mean little and robench
refuses it unless told otherwise; softmax outputs and zero input gradients are the classic
signs of gradient masking (a non-differentiable or saturating layer) that make gradient
attacks overestimate robustness, so they are recorded in every row's `flags` column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from robench.errors import RobenchError

RANDOMIZED_TOLERANCE = 1e-4  # relative L2 difference of two forward passes (AutoAttack's)
SOFTMAX_TOLERANCE = 1e-5


class EvaluationRefused(RobenchError):
    """The model cannot be evaluated honestly as it is."""


@dataclass
class SanityReport:
    flags: list[str] = field(default_factory=list)

    def text(self) -> str:
        """The `flags` column: empty when every check passed."""
        return ";".join(sorted(set(self.flags)))


def check_model(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    num_classes: int | None = None,
    allow_randomized: bool = False,
    allow_training_mode: bool = False,
) -> SanityReport:
    """Run the checks on one batch; raises EvaluationRefused for what must not be evaluated.

    `model` must already be in eval mode, as the evaluator puts it. Refused outright: weights
    that are not finite floats, outputs that are not finite (N, num_classes) logits. Flagged:
    softmax outputs, and examples whose input gradient is exactly zero, not finite, or missing
    (the input is not in the graph), the signs of gradient masking.
    """
    report = SanityReport()
    _check_weights(model)
    training = [name or "(model)" for name, m in model.named_modules() if m.training]
    if training:
        report.flags.append("training_mode")
        if not allow_training_mode:
            raise EvaluationRefused(
                f"the model stays in training mode after .eval() ({', '.join(training[:3])}); "
                "its outputs depend on the batch. Fix its train()/eval(), or pass "
                "--allow-training-mode to evaluate it anyway (flagged)"
            )
    with torch.no_grad():
        first, second = _logits(model, x, num_classes), _logits(model, x, num_classes)
    scale = first.flatten(1).norm(dim=1).clamp_min(1e-10)
    if bool(((first - second).flatten(1).norm(dim=1) / scale > RANDOMIZED_TOLERANCE).any()):
        report.flags.append("randomized")
        if not allow_randomized:
            raise EvaluationRefused(
                "the model is randomised (two forward passes on the same batch differ); "
                "deterministic attacks overestimate such defences. Pass --allow-randomized to "
                "evaluate it anyway (flagged; consider AutoAttack's 'rand' version with EOT)"
            )
    if _looks_like_probabilities(first):
        report.flags.append("softmax_output")
    zero, nonfinite = masked_gradient_counts(model, x, y)
    if zero:
        report.flags.append(f"zero_gradients:{zero}/{len(x)}")
    if nonfinite:
        report.flags.append(f"nonfinite_gradients:{nonfinite}/{len(x)}")
    return report


def _check_weights(model: nn.Module) -> None:
    """Every parameter and floating buffer a finite float (NaN weights score like chance)."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point():
            if not bool(torch.isfinite(tensor).all()):
                raise EvaluationRefused(f"the model's {name} holds NaN or infinite values")
        elif name in dict(model.named_parameters()):
            raise EvaluationRefused(f"the model's parameter {name} is {tensor.dtype}, not float")


def _logits(model: nn.Module, x: torch.Tensor, num_classes: int | None) -> torch.Tensor:
    """The model's output, which must be finite (N, num_classes) logits."""
    out = model(x)
    if not isinstance(out, torch.Tensor):
        raise EvaluationRefused(f"the model returned {type(out).__name__}, not a logits tensor")
    expected = (len(x), num_classes if num_classes is not None else out.shape[-1])
    if out.dim() != 2 or tuple(out.shape) != expected:
        raise EvaluationRefused(
            f"the model returned shape {tuple(out.shape)}; logits of shape {expected} "
            "(images x classes of the test set) were expected"
        )
    out = out.float()
    if not bool(torch.isfinite(out).all()):
        raise EvaluationRefused("the model's logits hold NaN or infinite values")
    return out


def _looks_like_probabilities(out: torch.Tensor) -> bool:
    return bool(
        out.max() < 1 + SOFTMAX_TOLERANCE
        and out.min() > -SOFTMAX_TOLERANCE
        and ((out.sum(1) - 1).abs() < SOFTMAX_TOLERANCE).all()
    )


def masked_gradient_counts(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[int, int]:
    """Examples whose cross-entropy input gradient is exactly zero (or missing: the input is
    not in the graph), and examples whose gradient is NaN or infinite: both leave a gradient
    attack nowhere to go (sign(NaN) is 0), so an honest-looking RA would mean nothing."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).float(), y, reduction="none")
        if not loss.requires_grad:  # e.g. a detached quantisation layer
            return len(x), 0
        (grad,) = torch.autograd.grad(loss.sum(), x, allow_unused=True)
    if grad is None:  # the output does not depend on the input through autograd at all
        return len(x), 0
    flat = grad.flatten(1)
    nonfinite = ~torch.isfinite(flat).all(1)
    zero = (flat.abs().sum(1) == 0) & ~nonfinite
    return int(zero.sum()), int(nonfinite.sum())
