"""Motion blur along a random direction in [-45, 45] degrees per image.

The official code calls ImageMagick's MotionBlurImage (through Wand), which is not available
here; `_ops.motion_blur` reimplements its one-sided Gaussian line kernel in torch, including
its rounding of the sample offsets and edge-repeating borders. The result is rounded to 8-bit
levels as ImageMagick's PNG output was.
"""

import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity, round_uint8_levels, uniform
from robench.corruptions.registry import CORRUPTIONS

PARAMS = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))  # ImageMagick (radius, sigma), pixels
ANGLE_RANGE = (-45.0, 45.0)  # degrees


@CORRUPTIONS.register("motion_blur")
def motion_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    radius, sigma = at_severity(PARAMS, x, severity)
    angles = uniform(generator, (x.shape[0],), *ANGLE_RANGE, x)
    return round_uint8_levels(_ops.motion_blur(x, radius, sigma, angles))
