"""Gaussian noise: add N(0, sigma^2) to every channel value, then clip to [0, 1]."""

import torch
from torch import Tensor

from robench.corruptions.base import at_severity, normal
from robench.corruptions.registry import CORRUPTIONS

SIGMA = (0.04, 0.06, 0.08, 0.09, 0.10)  # noise standard deviation, in [0, 1] pixel units


@CORRUPTIONS.register("gaussian_noise")
def gaussian_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    sigma = at_severity(SIGMA, x, severity)
    return (x + normal(generator, x.shape, 0.0, sigma, x)).clamp(0, 1)
