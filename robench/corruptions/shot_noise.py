"""Shot (Poisson) noise: photon counts ~ Poisson(x * rate), divided back by the rate."""

import torch
from torch import Tensor

from robench.corruptions.base import at_severity
from robench.corruptions.registry import CORRUPTIONS

RATE = (500, 250, 100, 75, 50)  # photons at full brightness; fewer photons = more noise


@CORRUPTIONS.register("shot_noise")
def shot_noise(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    rate = at_severity(RATE, x, severity)
    # drawn where the generator lives (see base), so a CPU generator gives the same counts
    counts = torch.poisson((x * rate).to(generator.device, torch.float32), generator=generator)
    return (counts.to(device=x.device, dtype=x.dtype) / rate).clamp(0, 1)
