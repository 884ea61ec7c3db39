"""Brightness: raise the HSV value channel by a constant, keeping hue and saturation.

With hue and saturation fixed, every RGB channel is proportional to V = max(R, G, B), so the
HSV round trip of the official code (skimage) is a per-pixel scale by V' / V; black pixels
(V = 0, saturation 0) become grey V'.
"""

import torch
from torch import Tensor

from robench.corruptions.base import at_severity
from robench.corruptions.registry import CORRUPTIONS

SHIFT = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to V in [0, 1]


@CORRUPTIONS.register("brightness")
def brightness(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    shift = at_severity(SHIFT, x, severity)
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + shift).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x)).clamp(0, 1)
