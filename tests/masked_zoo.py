"""A zoo of gradient-masking wrappers around a real model (issue #18): each hides or corrupts
the input gradient while classifying (nearly) exactly as the model it wraps, so a gradient
attack that trusts the gradient reports robustness the model does not have.

Used by tests/eval/test_eval_masking_zoo.py (every one must be flagged or refused, the honest
models must not be) and by benchmarks/masking_cross_check.py (the closing-note table and the
cross-check's cost).
"""

from __future__ import annotations

import torch
from torch import nn


class _Reversed(torch.autograd.Function):
    """Identity forward; the gradient flipped: PGD climbs down the loss instead of up."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class _Shattered(torch.autograd.Function):
    """Identity forward; a random gradient of the same size (Athalye et al.'s shattering)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.randn_like(grad)


def _nan_gradient(x: torch.Tensor) -> torch.Tensor:
    return x + torch.sqrt(x - x)  # 0 in value, NaN in gradient


def _detached(x: torch.Tensor) -> torch.Tensor:
    return x.detach()


def _quantised(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x * 255) / 255  # round's gradient is zero almost everywhere


INPUT_MASKS = {
    "nan_gradient": _nan_gradient,
    "detached": _detached,
    "quantised": _quantised,
    "reversed_gradient": _Reversed.apply,
    "shattered_gradient": _Shattered.apply,
}
OUTPUT_MASKS = ("detached_leak", "saturated_logits", "softmax_output")
TECHNIQUES = (*INPUT_MASKS, *OUTPUT_MASKS)


class Masked(nn.Module):
    """`inner` behind one masking technique (a name of TECHNIQUES)."""

    def __init__(self, inner: nn.Module, technique: str) -> None:
        super().__init__()
        if technique not in TECHNIQUES:
            raise ValueError(f"unknown masking technique {technique!r}")
        self.inner, self.technique = inner, technique

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.technique in INPUT_MASKS:
            return self.inner(INPUT_MASKS[self.technique](x))
        if self.technique == "detached_leak":  # a gradient exists, but none through the model
            logits = self.inner(x.detach())
            return logits + 1e-30 * x.flatten(1)[:, : logits.shape[1]]
        logits = self.inner(x)
        if self.technique == "saturated_logits":  # CE saturates: its float32 gradient is 0
            return logits * 1e4
        return torch.softmax(logits * 1e4, dim=1)  # probabilities out, saturated
