"""Snow: a thresholded, zoomed Gaussian field as flakes, streaked by motion blur, over a
brightened, greyed image.

Flake layer: N(mean, std) per pixel, zoomed into its centre, values below a threshold dropped,
stored as 8 bits, motion-blurred at an angle in [-135, -45] degrees (falling snow). It is added
twice, once rotated by 180 degrees. ImageMagick's motion blur is reimplemented in torch (see
`_ops.motion_blur`).
"""

import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import (
    at_severity,
    normal,
    round_uint8_levels,
    to_uint8_levels,
    uniform,
)
from robench.corruptions.registry import CORRUPTIONS

# (flake mean, flake std, zoom, threshold, blur radius, blur sigma, image weight)
PARAMS = (
    (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
    (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
    (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
    (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
    (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
)
ANGLE_RANGE = (-135.0, -45.0)  # degrees
GREY = (0.299, 0.587, 0.114)  # OpenCV's RGB -> grey weights


@CORRUPTIONS.register("snow")
def snow(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    mean, std, zoom, threshold, radius, sigma, weight = at_severity(PARAMS, x, severity)
    n, _, h, w = x.shape
    flakes = _ops.clipped_zoom(normal(generator, (n, 1, h, w), mean, std, x), zoom)
    flakes = to_uint8_levels(torch.where(flakes < threshold, 0.0, flakes).clamp(0, 1))
    angles = uniform(generator, (n,), *ANGLE_RANGE, x)
    flakes = round_uint8_levels(_ops.motion_blur(flakes, radius, sigma, angles))

    grey = (x * torch.tensor(GREY, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)).sum(1, True)
    x = weight * x + (1 - weight) * torch.maximum(x, grey * 1.5 + 0.5)
    return (x + flakes + flakes.flip(-2, -1)).clamp(0, 1)
