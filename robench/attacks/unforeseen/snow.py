"""Snow (Kang et al. 2019): optimise flake intensities that are smeared by streak kernels.

Each image gets N_FLAKE_KERNELS flake layers. Layer k has one flake site per
FLAKE_STRIDE x FLAKE_STRIDE pixel cell, at its own fixed offset in the cell; the site's
brightness is intensity ** INTENSITY_POWER, intensity in [0, 1] being the optimisation
variable (a grid of side ceil(side / FLAKE_STRIDE): 8 x 8 per layer for 32x32 images).
Every layer is convolved with its own streak kernel, a short anti-aliased line through the
kernel centre (random direction down-right, or down-left for the whole image with
probability 1/2, random width) blurred by a small Gaussian, as in advex-uar; the layers are
summed into one snow map. The image is first discoloured towards grey-white and the snow is
added:

    base  = (1 - discolor) * x + discolor * max(x, 1.5 * luma(x) + 0.5)
    x_adv = clip(base + eps * snow, 0, 1)

Strength: eps multiplies the snow map in [0, 1] image units (advex-uar applies snow to the
image divided by 255, so unlike fog and gabor this strength is not on the 0-255 scale).
Budget: intensities in [0, 1] and, per layer and per region of BUDGET_REGION x BUDGET_REGION
intensity cells (the whole grid for 32x32 images), a mean intensity of at most `budget`
(advex-uar's rescaling projection). Ascent: sign steps, then clip and rescale each region.
The discolouring is applied even at eps = 0 (as in advex-uar).

Differences from advex-uar, on purpose: kernels are drawn per image (advex-uar drew 7 for
the whole batch), the projection also follows the last step and the random start, and the
streak is our own anti-aliased segment (distance to the segment) rather than a port of
their line-drawing routine.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from robench.attacks.registry import ATTACKS
from robench.attacks.unforeseen.base import (
    UnforeseenAttack,
    gaussian_kernel_1d,
    uniform,
    var_step,
)
from robench.errors import ConfigError

N_FLAKE_KERNELS = 7  # flake layers per image, each with its own streak kernel
FLAKE_STRIDE = 4  # one flake site per 4 x 4 pixel cell and layer
# Offsets (row, col) of each layer's site inside its cell: 4 along the top row, 3 down the
# left column (advex-uar's placement).
SITE_OFFSETS = ((0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (2, 0), (3, 0))
INTENSITY_POWER = 4  # flake brightness = intensity ** 4 (a few bright flakes, many faint)
MIN_INTENSITY = 1e-9  # keeps intensity ** 4 differentiable away from an all-zero dead end
BUDGET = 0.2  # advex-uar's default: mean intensity per region and layer
BUDGET_REGION = 8  # region side, in intensity cells (32 pixels)

STREAK_SIZE = 13  # streak kernel side (advex-uar's snow_length_bound)
STREAK_REACH = (2, STREAK_SIZE // 2)  # line end offset from the centre, per axis, in pixels
STREAK_WIDTHS = (1.0, 3.0, 5.0)  # line widths in pixels ...
STREAK_WIDTH_PROBS = (0.6, 0.3, 0.1)  # ... and their probabilities
STREAK_HALF_WIDTH_PER_WIDTH = 0.25  # full-intensity half-width of the line per unit width
BLUR_SIZE = 3  # Gaussian blur of each streak: ceil(5 * std) for std in BLUR_STD
BLUR_STD = (0.41, 0.6)
DISCOLOR = 0.25
LUMA = (0.2126, 0.7152, 0.0722)  # Rec. 709 weights used by advex-uar's discolouring
BRIGHTEN = (1.5, 0.5)  # grey-white target: 1.5 * luma + 0.5


def streak_kernels(n: int, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random streak kernels (n, N_FLAKE_KERNELS, STREAK_SIZE, STREAK_SIZE), values in [0, 1]."""
    k = N_FLAKE_KERNELS
    lo, hi = STREAK_REACH
    reach = lo + (uniform((n, k, 2), x, generator) * (hi - lo + 1)).floor()  # (dy, dx)
    flip = uniform((n, 1), x, generator) < 0.5  # one horizontal flip per image
    reach[..., 1] = torch.where(flip, -reach[..., 1], reach[..., 1])
    cum = torch.tensor(STREAK_WIDTH_PROBS, device=x.device).cumsum(0)
    pick = (uniform((n, k, 1), x, generator) > cum[:-1]).sum(-1)
    width = torch.tensor(STREAK_WIDTHS, device=x.device)[pick]  # (n, k)

    # Distance of every pixel to the segment from -reach to +reach about the centre.
    coords = torch.arange(STREAK_SIZE, device=x.device, dtype=torch.float32) - STREAK_SIZE // 2
    pixel = torch.stack(torch.meshgrid(coords, coords, indexing="ij"), -1)  # (S, S, 2)
    end = reach[:, :, None, None, :]  # (n, k, 1, 1, 2)
    t = ((pixel + end) * (2 * end)).sum(-1) / (4 * (end * end).sum(-1))
    nearest = -end + t.clamp(0, 1).unsqueeze(-1) * 2 * end
    distance = (pixel - nearest).norm(dim=-1)
    half = STREAK_HALF_WIDTH_PER_WIDTH * width[:, :, None, None]
    line = (1 + half - distance).clamp(0, 1)

    std = BLUR_STD[0] + (BLUR_STD[1] - BLUR_STD[0]) * uniform((n,), x, generator)
    taps = gaussian_kernel_1d(BLUR_SIZE, std)  # (n, B)
    blur = (taps[:, :, None] * taps[:, None, :]).repeat_interleave(k, 0).unsqueeze(1)
    out = F.conv2d(line.reshape(1, n * k, STREAK_SIZE, STREAK_SIZE), blur, padding=1, groups=n * k)
    return out.reshape(n, k, STREAK_SIZE, STREAK_SIZE)


def site_kernels(streaks: torch.Tensor) -> torch.Tensor:
    """Transposed-convolution weights (n * layers, 1, S + 3, S + 3) for `Snow.render`.

    Correlating a site grid (flakes at FLAKE_STRIDE * i + offset) with streak K equals a
    stride-FLAKE_STRIDE transposed convolution of the flakes with K flipped and shifted by
    the offset (padding STREAK_SIZE // 2). Each image's layers form one group, so the
    transposed convolution also sums the layers into one snow map.
    """
    n, k, size, _ = streaks.shape
    span = size + FLAKE_STRIDE - 1
    weight = streaks.new_zeros(n, k, span, span)
    for layer, (dy, dx) in enumerate(SITE_OFFSETS):
        weight[:, layer, dy : dy + size, dx : dx + size] = streaks[:, layer].flip(-1, -2)
    return weight.reshape(n * k, 1, span, span)


def region_means(intensity: torch.Tensor) -> torch.Tensor:
    """Mean intensity per region and layer, broadcast back to the cells."""
    h, w = intensity.shape[2:]
    means = F.avg_pool2d(intensity, BUDGET_REGION, ceil_mode=True)  # partial regions: own count
    up = means.repeat_interleave(BUDGET_REGION, 2).repeat_interleave(BUDGET_REGION, 3)
    return up[:, :, :h, :w]


class Snow(UnforeseenAttack):
    name = "snow"
    strength_unit = "multiplier of the snow map, in [0, 1] image units"

    def __init__(
        self,
        eps: float,
        steps: int = 200,
        step_size: float | None = None,
        *,
        budget: float = BUDGET,
        discolor: float = DISCOLOR,
        bn_mode: str = "eval",
    ) -> None:
        super().__init__(eps, steps, step_size, bn_mode=bn_mode)
        if not 0 < budget <= 1 or not 0 <= discolor <= 1:
            raise ConfigError("snow: need 0 < budget <= 1 and 0 <= discolor <= 1")
        self.budget = float(budget)
        self.discolor = float(discolor)

    def default_step_size(self) -> float:
        return var_step(self.steps)

    def init_variables(self, x, generator):
        if x.shape[1] != 3:
            raise ValueError(f"snow needs RGB images, got {x.shape[1]} channels")
        n = len(x)
        cells = (math.ceil(x.shape[2] / FLAKE_STRIDE), math.ceil(x.shape[3] / FLAKE_STRIDE))
        # Exponentially distributed start (advex-uar): mostly faint, mean about `budget`.
        start = torch.exp(-uniform((n, N_FLAKE_KERNELS, *cells), x, generator) / self.budget)
        context = {"kernels": site_kernels(streak_kernels(n, x, generator))}
        return self._project(start), context

    def render(self, x, v, context):
        n, _, h, w = x.shape
        ch, cw = v.shape[2:]
        # Placing flakes on their sites and convolving with the streaks is one strided
        # transposed convolution with the site offsets built into the kernels (see
        # `site_kernels`); a direct convolution over the mostly-empty site grid is ~10x slower.
        flakes = (v**INTENSITY_POWER).reshape(1, n * N_FLAKE_KERNELS, ch, cw)
        snow = F.conv_transpose2d(
            flakes, context["kernels"], stride=FLAKE_STRIDE, padding=STREAK_SIZE // 2, groups=n
        )
        snow = snow.reshape(n, 1, ch * FLAKE_STRIDE, cw * FLAKE_STRIDE)[:, :, :h, :w]
        luma = sum(c * x[:, i : i + 1] for i, c in enumerate(LUMA))
        white = torch.maximum(x, BRIGHTEN[0] * luma + BRIGHTEN[1])
        base = (1 - self.discolor) * x + self.discolor * white
        return (base + self.eps * snow).clamp(0, 1)

    def ascend(self, v, grad, context, it):
        return self._project(v + self.step_size * grad.sign())

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        v = v.clamp(MIN_INTENSITY, 1)
        return v * (self.budget / region_means(v).clamp_min(self.budget))

    def budget_excess(self, v, context):
        over_mean = (region_means(v) / self.budget - 1).flatten(1).amax(1)
        outside = torch.maximum(v - 1, -v).flatten(1).amax(1)
        return torch.maximum(over_mean, outside).clamp_min(0)


@ATTACKS.register("snow")
def snow(
    eps: float,
    steps: int = 200,
    step_size: float | None = None,
    bn_mode: str = "eval",
    budget: float = BUDGET,
    discolor: float = DISCOLOR,
) -> Snow:
    return Snow(eps, steps, step_size, budget=budget, discolor=discolor, bn_mode=bn_mode)
