"""Fog: add a plasma-fractal haze, then rescale so the brightest value stays roughly in place."""

import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity
from robench.corruptions.registry import CORRUPTIONS

# (haze strength, wibble decay of the fractal: lower = rougher haze); fractal map 32 x 32
PARAMS = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))
MAPSIZE = 32


@CORRUPTIONS.register("fog")
def fog(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    strength, decay = at_severity(PARAMS, x, severity)
    n, _, h, w = x.shape
    max_val = x.amax(dim=(1, 2, 3), keepdim=True)
    haze = _ops.plasma_fractal(generator, n, x, mapsize=MAPSIZE, wibbledecay=decay)
    x = x + strength * haze[:, None, :h, :w]
    return (x * max_val / (max_val + strength)).clamp(0, 1)
