"""Zoom blur: average the image with centre zooms of itself (factor 1 up to 1.06 .. 1.25)."""

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import IMAGE_SIZE, at_severity
from robench.corruptions.registry import CORRUPTIONS

# official: np.arange(1, stop, 0.01); float rounding makes the first two stops inclusive, so
# the severities average 7, 12, 16, 21 and 26 zooms (1.00..1.06, ..1.11, ..1.15, ..1.20, ..1.25)
STOPS = (1.06, 1.11, 1.16, 1.21, 1.26)
STEP = 0.01


@lru_cache(maxsize=len(STOPS))
def blur_operator(stop: float, size: int = IMAGE_SIZE) -> Tensor:
    """The whole blur as one linear map of the flattened image: [size^2, size^2], float64.

    (x + sum_f Z_f x Z_f^T) / (count + 1), with Z_f the 1-D clipped zoom: each term is the
    Kronecker product Z_f (x) Z_f on row-major pixels. One big matrix product then replaces
    2 x 26 small ones.
    """
    factors = [float(f) for f in np.arange(1, stop, STEP)]
    zooms = torch.stack([_ops.zoom_matrix(f, size) for f in factors]).view(len(factors), -1)
    # sum_f kron(Z_f, Z_f)[(a, c), (b, d)] = sum_f Z_f[a, b] Z_f[c, d], as one matrix product
    op = (zooms.T @ zooms).view(size, size, size, size).permute(0, 2, 1, 3).reshape(size**2, -1)
    return (op + torch.eye(size * size, dtype=torch.float64)) / (len(factors) + 1)


@CORRUPTIONS.register("zoom_blur")
def zoom_blur(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    stop = at_severity(STOPS, x, severity)
    return _ops.apply_operator(x, blur_operator(stop)).clamp(0, 1)
