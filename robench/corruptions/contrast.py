"""Contrast: pull every channel towards its per-image mean."""

import torch
from torch import Tensor

from robench.corruptions.base import at_severity
from robench.corruptions.registry import CORRUPTIONS

FACTOR = (0.75, 0.5, 0.4, 0.3, 0.15)  # remaining fraction of the deviation from the mean


@CORRUPTIONS.register("contrast")
def contrast(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    factor = at_severity(FACTOR, x, severity)
    means = x.mean(dim=(2, 3), keepdim=True)  # per image and channel, as in the official code
    return ((x - means) * factor + means).clamp(0, 1)
