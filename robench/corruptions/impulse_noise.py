"""Impulse (salt-and-pepper) noise, as skimage's random_noise(mode="s&p").

Each channel value independently is hit with probability `amount`; a hit becomes 1 or 0 with
equal odds. (Older skimage releases drew a fixed number of coordinates instead; the expected
fraction of hit values is the same.)
"""

import torch
from torch import Tensor

from robench.corruptions.base import at_severity, uniform
from robench.corruptions.registry import CORRUPTIONS

AMOUNT = (0.01, 0.02, 0.03, 0.05, 0.07)  # fraction of channel values replaced


@CORRUPTIONS.register("impulse_noise")
def impulse_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    amount = at_severity(AMOUNT, x, severity)
    flipped = uniform(generator, x.shape, 0.0, 1.0, x) < amount
    salted = uniform(generator, x.shape, 0.0, 1.0, x) < 0.5
    out = torch.where(flipped & salted, torch.ones_like(x), x)
    return torch.where(flipped & ~salted, torch.zeros_like(x), out)
