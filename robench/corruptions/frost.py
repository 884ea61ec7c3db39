"""Frost: blend the image with a random 32x32 crop of a frost texture.

DEVIATION from the official CIFAR-10-C: the official code crops photographs of frosted glass
(frost1.png .. frost5.jpg, shrunk to 1/5) that are not available here. We synthesise five
frost textures procedurally instead: a plasma-fractal haze whose thick parts become bright ice
patches, fern-like ice dendrites (anti-aliased line segments with side branches) and fine
grain, tinted pale blue (mean about 0.46, standard deviation about 0.24 in [0, 1]). They
are generated from a fixed seed, so they are identical on every machine and run; the blend
weights, the random texture choice (one of the first five) and the random crop follow the
official code. Accuracies under frost are therefore comparable in kind, not to the decimal.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity, randint
from robench.corruptions.registry import CORRUPTIONS
from robench.data.convert import to_unit

PARAMS = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))  # (image, frost) weights
TEXTURES = 5  # the official code draws one of its first five frost images
TEXTURE_SIZE = 128  # pixels; the official photos shrunk by 0.2 are a few hundred pixels wide
TEXTURE_SEED = 20190328  # fixed: the textures are data, not per-call randomness
TINT = (0.84, 0.92, 1.0)  # pale blue ice
SUPERSAMPLE = 4  # crystals are drawn this much larger, then averaged down
STEMS = 90  # crystals per texture
STEM_WIDTH, BRANCH_WIDTH = 1.25, 0.75  # line widths in texture pixels


def _dendrites(g: torch.Generator, size: int, stems: int) -> list[tuple[float, ...]]:
    """Line segments (x0, y0, x1, y1, brightness, width) of fern-like ice crystals: straight stems
    with alternating side branches that shorten towards the tip."""
    segments = []
    for _ in range(stems):
        x, y, a, ln, lv = torch.rand(5, generator=g).tolist()
        x, y, angle = x * size, y * size, a * 2 * math.pi
        length, level = 8 + 36 * ln, 0.6 + 0.4 * lv
        dx, dy = math.cos(angle), math.sin(angle)
        segments.append((x, y, x + length * dx, y + length * dy, level, STEM_WIDTH))
        steps = int(length // 2.5)
        jitter = torch.rand(steps, 2, generator=g).tolist()
        for k in range(1, steps):
            s = k * length / steps
            bx, by = x + s * dx, y + s * dy
            side = 1 if k % 2 else -1
            turn = angle + side * (math.pi / 3 + 0.3 * (jitter[k][0] - 0.5))
            blen = (length - s) * (0.25 + 0.3 * jitter[k][1])
            end = (bx + blen * math.cos(turn), by + blen * math.sin(turn))
            segments.append((bx, by, *end, level * 0.85, BRANCH_WIDTH))
    return segments


def _draw(segments: list[tuple[float, ...]], size: int) -> Tensor:
    """Anti-aliased lines: drawn SUPERSAMPLE times larger with PIL, then box-reduced."""
    canvas = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for x0, y0, x1, y1, level, width in segments:
        xy = [c * SUPERSAMPLE for c in (x0, y0, x1, y1)]
        draw.line(xy, fill=round(255 * level), width=round(width * SUPERSAMPLE))
    small = canvas.reduce(SUPERSAMPLE)
    return to_unit(torch.from_numpy(np.array(small, dtype=np.uint8)), torch.preserve_format)


@lru_cache(maxsize=1)
def frost_textures() -> Tensor:
    """[TEXTURES, 3, S, S] float32 in [0, 1] on the CPU; deterministic."""
    g = torch.Generator().manual_seed(TEXTURE_SEED)
    size = TEXTURE_SIZE
    haze = _ops.plasma_fractal(g, TEXTURES, torch.zeros(()), mapsize=size, wibbledecay=1.6)
    out = []
    for i in range(TEXTURES):
        crystals = _ops.gaussian_blur(_draw(_dendrites(g, size, STEMS), size)[None, None], 0.4)
        grain = _ops.gaussian_blur(torch.rand(1, 1, size, size, generator=g), 0.7)
        # bright ice where the haze is thick: a soft threshold of the fractal
        patches = ((haze[i] - 0.45) / 0.3).clamp(0, 1)
        tex = (
            0.1 + 0.25 * haze[i] + 0.4 * patches + 0.7 * crystals[0, 0] + 0.2 * (grain[0, 0] - 0.5)
        )
        out.append(tex.clamp(0, 1))
    tint = torch.tensor(TINT).view(1, 3, 1, 1)
    return (torch.stack(out)[:, None] * tint).contiguous()


@CORRUPTIONS.register("frost")
def frost(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    image_weight, frost_weight = at_severity(PARAMS, x, severity)
    n, _, h, w = x.shape
    textures = frost_textures().to(device=x.device, dtype=x.dtype)
    size = textures.shape[-1]
    which = randint(generator, (n,), 0, TEXTURES, x)
    top = randint(generator, (n,), 0, size - h, x)
    left = randint(generator, (n,), 0, size - w, x)
    rows = (top.view(n, 1, 1) + torch.arange(h, device=x.device).view(1, h, 1)) * size
    idx = rows + left.view(n, 1, 1) + torch.arange(w, device=x.device).view(1, 1, w)
    idx = idx.view(n, 1, h * w).expand(n, 3, h * w)
    crops = textures[which].reshape(n, 3, size * size).gather(2, idx).view(n, 3, h, w)
    return (image_weight * x + frost_weight * crops).clamp(0, 1)
