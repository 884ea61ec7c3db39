"""Defocus blur: convolve with an anti-aliased disk (OpenCV filter2D, reflect-101 borders)."""

from functools import lru_cache

import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import IMAGE_SIZE, at_severity
from robench.corruptions.registry import CORRUPTIONS

# (disk radius, alias-blur sigma) in pixels; radii below 1 leave a single-pixel disk, so the
# first three severities are 3x3 Gaussian blurs of growing sigma
PARAMS = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))


@CORRUPTIONS.register("defocus_blur")
def defocus_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    radius, alias_blur = at_severity(PARAMS, x, severity)
    return _ops.apply_operator(x, _operator(radius, alias_blur)).clamp(0, 1)


@lru_cache(maxsize=len(PARAMS))
def _operator(radius: float, alias_blur: float) -> Tensor:
    """The whole filter as one matrix on flattened 32x32 images (border rule included)."""
    return _ops.filter2d_operator(_ops.disk_kernel(radius, alias_blur), IMAGE_SIZE, IMAGE_SIZE)
