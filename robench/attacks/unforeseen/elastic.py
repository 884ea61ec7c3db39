"""Elastic (Kang et al. 2019): optimise a per-pixel flow field, smoothed, then resample.

The variables are a flow field (N, 2, H, W) in pixels (channel 0 horizontal, 1 vertical). It
is smoothed by a normalised Gaussian (`kernel_size`, `kernel_std`, reflect padding) and each
output pixel samples the input, bilinearly, at its own position plus the smoothed flow
(`grid_sample`, pixel centres, zeros outside the image as in advex-uar).

Strength: eps is the largest displacement in pixels (L-inf of the raw flow; the smoothed
flow, a weighted mean, is no larger). Budget: |flow| <= eps. Ascent: sign steps of
eps / sqrt(steps) by default (Kang et al.), clipped to [-eps, eps]; the start is uniform in
the ball. Output pixels are convex combinations of input pixels and zeros, so they stay in
[0, 1]. advex-uar's CIFAR-10 smoothing: a 5-pixel kernel, std 3 / 224 * 32 (their ImageNet
std of 3 pixels scaled to 32-pixel images), kept here as the defaults.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robench.attacks.registry import ATTACKS
from robench.attacks.unforeseen.base import (
    UnforeseenAttack,
    eps_step,
    gaussian_kernel_1d,
    uniform,
)
from robench.errors import ConfigError

KERNEL_SIZE = 5  # advex-uar, CIFAR-10 (25 on ImageNet)
KERNEL_STD = 3.0 / 224.0 * 32  # advex-uar, CIFAR-10 (3 on ImageNet), in pixels
PADDING_MODES = ("zeros", "border", "reflection")


class Elastic(UnforeseenAttack):
    name = "elastic"
    strength_unit = "largest displacement in pixels"

    def __init__(
        self,
        eps: float,
        steps: int = 200,
        step_size: float | None = None,
        *,
        kernel_size: int = KERNEL_SIZE,
        kernel_std: float = KERNEL_STD,
        padding_mode: str = "zeros",
        bn_mode: str = "eval",
    ) -> None:
        super().__init__(eps, steps, step_size, bn_mode=bn_mode)
        if kernel_size < 1 or kernel_size % 2 == 0 or not kernel_std > 0:
            raise ConfigError("elastic: kernel_size must be odd and >= 1, kernel_std > 0")
        if padding_mode not in PADDING_MODES:
            raise ConfigError(f"elastic: padding_mode must be one of {PADDING_MODES}")
        self.kernel_size = kernel_size
        self.kernel_std = float(kernel_std)
        self.padding_mode = padding_mode

    def default_step_size(self) -> float:
        return eps_step(self.eps, self.steps)

    def init_variables(self, x, generator):
        n, _, h, w = x.shape
        flow = (2 * uniform((n, 2, h, w), x, generator) - 1) * self.eps
        std = torch.full((), self.kernel_std, device=x.device)
        taps = gaussian_kernel_1d(self.kernel_size, std)
        smoothing = (taps[:, None] * taps[None, :]).expand(2, 1, -1, -1)
        # Pixel centres in grid_sample's [-1, 1] coordinates (align_corners=False): one pixel
        # is 2 / side, advex-uar's conversion of eps from pixels.
        ys = (torch.arange(h, device=x.device, dtype=torch.float32) * 2 + 1) / h - 1
        xs = (torch.arange(w, device=x.device, dtype=torch.float32) * 2 + 1) / w - 1
        centres = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # (h, w, [x, y])
        per_pixel = torch.stack((torch.full((), 2 / w), torch.full((), 2 / h))).to(x.device)
        return flow, {"smoothing": smoothing, "centres": centres, "per_pixel": per_pixel}

    def render(self, x, v, context):
        pad = self.kernel_size // 2
        flow = F.conv2d(F.pad(v, (pad,) * 4, mode="reflect"), context["smoothing"], groups=2)
        grid = context["centres"] + flow.permute(0, 2, 3, 1) * context["per_pixel"]
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode=self.padding_mode, align_corners=False
        ).clamp(0, 1)

    def ascend(self, v, grad, context, it):
        return (v + self.step_size * grad.sign()).clamp(-self.eps, self.eps)

    def budget_excess(self, v, context):
        return ((v.abs().flatten(1).amax(1) - self.eps) / max(self.eps, 1e-12)).clamp_min(0)


@ATTACKS.register("elastic")
def elastic(
    eps: float,
    steps: int = 200,
    step_size: float | None = None,
    bn_mode: str = "eval",
    kernel_size: int = KERNEL_SIZE,
    kernel_std: float = KERNEL_STD,
    padding_mode: str = "zeros",
) -> Elastic:
    return Elastic(
        eps,
        steps,
        step_size,
        kernel_size=kernel_size,
        kernel_std=kernel_std,
        padding_mode=padding_mode,
        bn_mode=bn_mode,
    )
