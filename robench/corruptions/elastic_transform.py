"""Elastic transform: a random affine warp, then a smooth random displacement field.

Affine (OpenCV warpAffine, bilinear, reflect-101 borders): the three points (26, 26), (26, 6),
(6, 6) each move by U(-a, a) pixels in x and y. Displacement (scipy map_coordinates, order 1,
half-sample-reflect borders): two U(-1, 1) fields smoothed by a Gaussian (truncate 3, reflect)
and scaled by alpha. Severity 1 has alpha 0: affine only.
"""

import torch
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity, uniform
from robench.corruptions.registry import CORRUPTIONS

SIZE = 32
# (alpha, sigma, affine jitter) in pixels: the official fractions of IMSIZE = 32
PARAMS = (
    (SIZE * 0, SIZE * 0, SIZE * 0.08),
    (SIZE * 0.05, SIZE * 0.2, SIZE * 0.07),
    (SIZE * 0.08, SIZE * 0.06, SIZE * 0.06),
    (SIZE * 0.1, SIZE * 0.04, SIZE * 0.05),
    (SIZE * 0.1, SIZE * 0.03, SIZE * 0.03),
)
CENTER, HALF = SIZE // 2, SIZE // 3
ANCHORS = ((CENTER + HALF, CENTER + HALF), (CENTER + HALF, CENTER - HALF), (CENTER - HALF,) * 2)


def _affine_source(moved: Tensor, h: int, w: int) -> tuple[Tensor, Tensor]:
    """Source coordinates (y, x) [N, h, w] of the affine map sending ANCHORS to `moved`."""
    anchors = torch.tensor(ANCHORS, dtype=torch.float64)
    a = torch.cat([anchors, torch.ones(3, 1, dtype=torch.float64)], 1)  # rows (x, y, 1)
    forward = torch.linalg.solve(a, moved.double().cpu()).transpose(1, 2)  # [N, 2, 3]
    lin_inv = torch.linalg.inv(forward[:, :, :2])
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij"
    )
    dst = torch.stack([xs, ys]).reshape(1, 2, -1) - forward[:, :, 2:]  # [N, 2, h*w]
    src = (lin_inv @ dst).view(-1, 2, h, w)
    return src[:, 1], src[:, 0]


@CORRUPTIONS.register("elastic_transform")
def elastic_transform(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    alpha, sigma, jitter = at_severity(PARAMS, x, severity)
    n, _, h, w = x.shape
    moved = torch.tensor(ANCHORS, dtype=torch.float64) + uniform(
        generator, (n, 3, 2), -jitter, jitter, torch.zeros((), dtype=torch.float64)
    )
    src_y, src_x = _affine_source(moved, h, w)
    f = x.dtype
    x = _ops.sample_bilinear(x, src_y.to(x.device, f), src_x.to(x.device, f), "reflect101")

    field = uniform(generator, (n, 2, h, w), -1.0, 1.0, x)
    field = _ops.gaussian_blur(field, sigma, truncate=3.0, mode="reflect") * alpha
    ys = torch.arange(h, device=x.device, dtype=f).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=f).view(1, 1, w)
    x = _ops.sample_bilinear(x, ys + field[:, 1], xs + field[:, 0], "reflect")
    return x.clamp(0, 1)
