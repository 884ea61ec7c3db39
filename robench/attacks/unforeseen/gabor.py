"""Gabor (Kang et al. 2019, after Co et al.'s procedural noise): optimise sparse impulses
that a random Gabor kernel turns into oriented stripe noise.

Each image gets a variable map of its own size that is zero except on a random sparse set of
sites (each pixel is a site with probability 1 / SPARSITY), where it lies in [-1, 1]. It is
convolved ("same" padding) with one random Gabor kernel per image: a sum over `sides`
orientations theta + pi * i / sides of

    exp(-(u^2 + v^2) / (2 (sigma + SIGMA_FLOOR)^2)) * cos(2 pi * lambda * u),

u, v the rotated coordinates on a KERNEL_SIZE grid spanning [-0.5, 0.5]. The noise is then
equalised (advex-uar's `normalize_var`: deviations from the mean are divided by their
relative magnitude, with gain (MIN_C + 1) / (MIN_C + |dev| / max|dev|) treated as a constant)
and min-max normalised to [0, 1] per image with a constant range. Then

    x_adv = clip(x + eps / 255 * noise, 0, 1)   (the same noise on every channel).

Strength: eps is the largest added brightness on the 0-255 pixel scale (the noise is in
[0, 1], so the image can only brighten, by at most eps / 255). Budget: variables in [-1, 1]
and zero off the sparse sites. Ascent: sign steps, clipped to [-1, 1], re-masked.

advex-uar computed the equalisation's local magnitude as irfft(rfft((v - mean)^2)) with the
torch.rfft API that PyTorch removed; that forward/inverse transform pair is the identity, so
the magnitude is |v - mean| and is computed directly here (no FFT needed). Its min-max and
magnitude divisions are floored, so a flat map gives zero noise, not NaN. KERNEL_SIZE is
advex-uar's (tuned on 224x224 images; Kang et al. never ran Gabor on CIFAR-10): on 32x32
images one kernel covers most of the image, with stripe periods of 4 to 8 pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robench.attacks.registry import ATTACKS
from robench.attacks.unforeseen.base import (
    TINY,
    UnforeseenAttack,
    minmax_normalise,
    uniform,
    var_step,
)
from robench.errors import ConfigError

KERNEL_SIZE = 23  # kernel side in pixels (odd: "same" padding KERNEL_SIZE // 2)
SPARSITY = 14  # a pixel is a variable site with probability 1 / SPARSITY
MAX_SIDES = 10  # sides ~ uniform {1, ..., MAX_SIDES}
SIGMA = (0.1, 0.4)  # envelope width, in kernel widths, ~ uniform
SIGMA_FLOOR = 1e-3
LAMBDA_MIN = 3.0  # cycles per kernel width ~ uniform [3, KERNEL_SIZE / 4)
MIN_C = 1e-3  # equalisation floor (advex-uar's minC)


def gabor_kernels(
    n: int, size: int, x: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """One random multi-orientation Gabor kernel per image: (n, 1, size, size)."""
    draw = uniform((n, 4), x, generator)
    sides = (draw[:, 0] * MAX_SIDES).floor() + 1
    sigma = SIGMA[0] + (SIGMA[1] - SIGMA[0]) * draw[:, 1]
    lam = LAMBDA_MIN + (size / 4 - LAMBDA_MIN) * draw[:, 2]
    theta = math.pi * draw[:, 3]

    axis = torch.linspace(-0.5, 0.5, size, device=x.device)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    i = torch.arange(MAX_SIDES, device=x.device, dtype=torch.float32)
    angle = (theta[:, None] + math.pi * i / sides[:, None])[:, :, None, None]  # (n, S, 1, 1)
    along = xx * torch.cos(angle) + yy * torch.sin(angle)
    envelope = torch.exp(-0.5 * (xx**2 + yy**2) / (sigma[:, None, None] + SIGMA_FLOOR) ** 2)
    waves = torch.cos(2 * math.pi * lam[:, None, None, None] * along)
    used = (i[None, :] < sides[:, None]).float()[:, :, None, None]
    return (envelope[:, None] * waves * used).sum(1, keepdim=True)


def equalise(noise: torch.Tensor) -> torch.Tensor:
    """advex-uar's normalize_var: flatten the magnitude of the deviations, then map to [0, 1]."""
    mean = noise.mean((1, 2, 3), keepdim=True)
    dev = noise - mean
    magnitude = dev.abs()
    magnitude = magnitude / magnitude.amax((1, 2, 3), keepdim=True).clamp_min(TINY)
    gain = ((MIN_C + 1) / (MIN_C + magnitude)).detach()
    return minmax_normalise(mean.detach() + dev * gain, detach_range=True)


class Gabor(UnforeseenAttack):
    name = "gabor"
    strength_unit = "largest added brightness on the 0-255 pixel scale"

    def __init__(
        self,
        eps: float,
        steps: int = 200,
        step_size: float | None = None,
        *,
        kernel_size: int = KERNEL_SIZE,
        sparsity: float = SPARSITY,
        bn_mode: str = "eval",
    ) -> None:
        super().__init__(eps, steps, step_size, bn_mode=bn_mode)
        if kernel_size < 1 or kernel_size % 2 == 0 or not sparsity >= 1:
            raise ConfigError("gabor: kernel_size must be odd and >= 1, sparsity >= 1")
        self.kernel_size = kernel_size
        self.sparsity = float(sparsity)

    def default_step_size(self) -> float:
        return var_step(self.steps)

    def init_variables(self, x, generator):
        n, _, h, w = x.shape
        mask = (uniform((n, 1, h, w), x, generator) < 1 / self.sparsity).float()
        values = 2 * uniform((n, 1, h, w), x, generator) - 1
        kernels = gabor_kernels(n, self.kernel_size, x, generator)
        return values * mask, {"mask": mask, "kernels": kernels}

    def render(self, x, v, context):
        n, _, h, w = x.shape
        noise = F.conv2d(
            v.reshape(1, n, h, w), context["kernels"], padding=self.kernel_size // 2, groups=n
        )
        noise = equalise(noise.reshape(n, 1, h, w))
        return (x + self.eps / 255 * noise).clamp(0, 1)

    def ascend(self, v, grad, context, it):
        return (v + self.step_size * grad.sign()).clamp(-1, 1) * context["mask"]

    def budget_excess(self, v, context):
        off_sites = (v * (1 - context["mask"])).abs().flatten(1).amax(1)
        return torch.maximum((v.abs() - 1).flatten(1).amax(1), off_sites).clamp_min(0)


@ATTACKS.register("gabor")
def gabor(
    eps: float,
    steps: int = 200,
    step_size: float | None = None,
    bn_mode: str = "eval",
    kernel_size: int = KERNEL_SIZE,
    sparsity: float = SPARSITY,
) -> Gabor:
    return Gabor(eps, steps, step_size, kernel_size=kernel_size, sparsity=sparsity, bn_mode=bn_mode)
