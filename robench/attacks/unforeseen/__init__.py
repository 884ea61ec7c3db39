"""The unforeseen attacks of Kang et al. (2019), as differentiable, untargeted torch attacks.

Six families, each registered in `ATTACKS` under its name: fog, snow, gabor, elastic,
jpeg_linf, jpeg_l1 (Chen et al.'s "12 unforeseen attacks" = these 6 x 2 strengths). Every
factory takes `(eps, steps=200, step_size=None, bn_mode="eval", **family options)`; a step
size of None means Kang et al.'s default (eps / sqrt(steps) for JPEG and elastic,
sqrt(1e-3 / steps) for the fog, snow and gabor variables: 0.002236 at 200 steps).
"""

from __future__ import annotations

from robench.attacks.unforeseen import elastic, fog, gabor, jpeg, snow  # noqa: F401 (register)
from robench.attacks.unforeseen.base import UnforeseenAttack, UnforeseenResult

FAMILIES = ("fog", "snow", "gabor", "elastic", "jpeg_linf", "jpeg_l1")

PROTOCOL_STRENGTHS: dict[str, tuple[float, float]] = {
    "fog": (128.0, 256.0),
    "snow": (0.0625, 0.125),
    "gabor": (6.25, 12.5),
    "elastic": (0.125, 0.25),
    "jpeg_linf": (0.03125, 0.0625),
    "jpeg_l1": (2.0, 8.0),
}
"""The two strengths per family (epsilon_1, epsilon_2) that make robench's 12 attacks.

Calibration: Kang et al.'s published ATA calibration (advex-uar, analysis/calibrations/),
the two smallest calibrated sizes of each attack. jpeg_linf, jpeg_l1 and elastic come from
the CIFAR-10 calibration (cifar-10/calibs.out, ResNet-56); Kang et al. did not calibrate fog,
snow and gabor on CIFAR-10, so those come from the ImageNet-100 calibration
(imagenet-100/calibs.out, ResNet-50), applied unchanged to 32x32 images. Units are each
family's own (its `strength_unit`): fog and gabor on the 0-255 pixel scale, snow a multiplier
in [0, 1] image units, elastic pixels of displacement, JPEG bounds on the coefficient
variables. All were calibrated with 200 steps. What they allow, in [0, 1] pixel terms:

- fog 128 / 256: fog of amplitude 0.50 / 1.00 added, then the image divided by
  (its channel maximum + amplitude): a white fog at most, about (x + 0.5) / 1.5 at 128.
- snow 0.0625 / 0.125: brightness added = strength x snow map (flake intensity ** 4 smeared
  by streaks: up to 1 along a full-intensity flake's streak, more where streaks overlap),
  after a fixed 25% grey-white tint.
- gabor 6.25 / 12.5: at most +0.0245 / +0.049 brightness per pixel (noise in [0, 1]).
- elastic 0.125 / 0.25: displacements of at most 1/8 / 1/4 pixel; a pixel changes by at
  most 23% / 44% of the largest difference to its neighbours (diagonal bilinear shift).
- jpeg_linf 0.03125 / 0.0625: each quantised DCT coefficient moves <= 1/64 / 1/32 of a
  quantisation step; per pixel at most 0.095 / 0.19 (24 / 48 of 255) in the worst case.
- jpeg_l1 2 / 8: quantised-coefficient changes summing to <= 1 / 4 steps (at most 1 step
  per coefficient); per pixel at most 0.17 / 0.66 in the worst case.
- both JPEG attacks also carry the 4:2:0 chroma loss of the round trip itself.
"""


def strength_column(family: str, strength: float) -> str:
    """The board column (and evaluation name) of one family at one strength, e.g. fog_128."""
    return f"{family}_{strength:g}"


PROTOCOL_COLUMNS = tuple(
    strength_column(family, s)
    for family, strengths in PROTOCOL_STRENGTHS.items()
    for s in strengths
)
"""The 12 attacks' columns, in protocol order."""

__all__ = [
    "FAMILIES",
    "PROTOCOL_COLUMNS",
    "PROTOCOL_STRENGTHS",
    "UnforeseenAttack",
    "UnforeseenResult",
    "strength_column",
]
