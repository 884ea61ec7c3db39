"""Fog (Kang et al. 2019): optimise the random displacements of a diamond-square fractal.

The fog map is a plasma fractal built coarse to fine on a periodic square grid whose side is
a power of 2 (`fog_map_size`: 64 for 32x32 images, 256 for 224x224, as in advex-uar). Each
level doubles the grid: square points get the mean of their 4 corners, diamond points the mean
of their 4 neighbours, each plus `wibble * (2 u - 1)` where u in [0, 1] is an optimisation
variable and wibble starts at WIBBLE_START and is divided by `wibble_decay` per level. The map
is normalised to [0, 1] per image, centre-cropped to the image, and blended in:

    x_adv = (x + s * fog) / (max_c(x) + s),    s = eps / 255,

with max_c(x) the per-image, per-channel maximum (the result stays in [0, 1]). Note that this
formula (Kang et al.'s) also stretches contrast when the image's maximum is below 1.

Strength: eps is the fog's amplitude on the 0-255 pixel scale (128 = fog adding up to ~0.5).
Budget: every variable in [0, 1]. Ascent: sign steps, clipped to [0, 1].

Differences from advex-uar, on purpose: the map is normalised per image (advex-uar used the
batch's min and max, which couples the images of a batch), and the diamond step averages the
adjacent square centres (advex-uar rolled them by 2 rows instead of 1, a port slip from
the numpy original).
"""

from __future__ import annotations

import math

import torch

from robench.attacks.registry import ATTACKS
from robench.attacks.unforeseen.base import (
    TINY,
    UnforeseenAttack,
    minmax_normalise,
    uniform,
    var_step,
)
from robench.errors import ConfigError

WIBBLE_START = 100.0
"""Random-displacement amplitude at the coarsest level (before the final [0, 1] rescale)."""

WIBBLE_DECAY = 2.0
"""advex-uar's FogAttack default (its fog_creator's own default, 1.75, is overridden)."""

VARS_PER_LEVEL = 3  # one grid of square points and two of diamond points per level


def fog_map_size(height: int, width: int) -> int:
    """advex-uar's map side: 2 ** (floor(log2(side)) + 1), a power of 2 larger than the image."""
    return 2 ** (int(math.log2(max(height, width))) + 1)


def level_sides(map_size: int) -> list[int]:
    """Side n of the coarse grid at each level: 1, 2, 4, ..., map_size / 2."""
    return [2**i for i in range(int(math.log2(map_size)))]


def diamond_square(u: torch.Tensor, map_size: int, wibble_decay: float) -> torch.Tensor:
    """Fractal maps (N, map_size, map_size) from flat variables u (N, 3 * sum(n^2))."""
    n_img = len(u)
    grid = torch.zeros(n_img, 1, 1, device=u.device, dtype=u.dtype)  # corner values
    sides = level_sides(map_size)
    parts = u.split([n * n for n in sides for _ in range(VARS_PER_LEVEL)], dim=1)
    wibble = WIBBLE_START
    for level, n in enumerate(sides):
        squares_u, across_u, down_u = (
            part.reshape(n_img, n, n)
            for part in parts[VARS_PER_LEVEL * level : VARS_PER_LEVEL * (level + 1)]
        )

        right, below = grid.roll(-1, 2), grid.roll(-1, 1)
        centres = (grid + right + below + below.roll(-1, 2)) / 4 + wibble * (2 * squares_u - 1)
        # Point between corners (i, j) and (i, j+1): centres above (i-1, j) and below (i, j).
        across = (grid + right + centres + centres.roll(1, 1)) / 4 + wibble * (2 * across_u - 1)
        # Point between corners (i, j) and (i+1, j): centres left (i, j-1) and right (i, j).
        down = (grid + below + centres + centres.roll(1, 2)) / 4 + wibble * (2 * down_u - 1)
        even_rows = torch.stack((grid, across), -1).reshape(n_img, n, 2 * n)
        odd_rows = torch.stack((down, centres), -1).reshape(n_img, n, 2 * n)
        grid = torch.stack((even_rows, odd_rows), 2).reshape(n_img, 2 * n, 2 * n)
        wibble /= wibble_decay
    return grid


class Fog(UnforeseenAttack):
    name = "fog"
    strength_unit = "fog amplitude on the 0-255 pixel scale"

    def __init__(
        self,
        eps: float,
        steps: int = 200,
        step_size: float | None = None,
        *,
        wibble_decay: float = WIBBLE_DECAY,
        bn_mode: str = "eval",
    ) -> None:
        super().__init__(eps, steps, step_size, bn_mode=bn_mode)
        if not wibble_decay > 0:
            raise ConfigError(f"fog: wibble_decay {wibble_decay!r} must be > 0")
        self.wibble_decay = float(wibble_decay)

    def default_step_size(self) -> float:
        return var_step(self.steps)

    def init_variables(self, x, generator):
        map_size = fog_map_size(x.shape[2], x.shape[3])
        count = VARS_PER_LEVEL * sum(n * n for n in level_sides(map_size))
        return uniform((len(x), count), x, generator), {}

    def render(self, x, v, context):
        height, width = x.shape[2:]
        map_size = fog_map_size(height, width)
        fog = minmax_normalise(diamond_square(v, map_size, self.wibble_decay))
        top, left = (map_size - height) // 2, (map_size - width) // 2
        fog = fog[:, None, top : top + height, left : left + width]
        strength = self.eps / 255
        peak = x.amax((2, 3), keepdim=True)
        return ((x + strength * fog) / (peak + strength).clamp_min(TINY)).clamp(0, 1)

    def ascend(self, v, grad, context, it):
        return (v + self.step_size * grad.sign()).clamp(0, 1)

    def budget_excess(self, v, context):
        return torch.maximum(v - 1, -v).clamp_min(0).amax(1)


@ATTACKS.register("fog")
def fog(
    eps: float,
    steps: int = 200,
    step_size: float | None = None,
    bn_mode: str = "eval",
    wibble_decay: float = WIBBLE_DECAY,
) -> Fog:
    return Fog(eps, steps, step_size, wibble_decay=wibble_decay, bn_mode=bn_mode)
