"""What every corruption shares: the input contract, severity lookup and seeded random draws.

Random numbers are drawn on the generator's device and then moved to the images' device, so a
CPU generator gives the same corruption whether the images sit on the CPU or a GPU (up to
float rounding); only the arithmetic runs on the images' device.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Protocol, TypeVar

import torch
from torch import Tensor

from robench.errors import ConfigError, DataError

SEVERITIES = (1, 2, 3, 4, 5)
IMAGE_SIZE = 32  # the published parameters are tuned for 32x32 CIFAR images

P = TypeVar("P")


class CorruptionFn(Protocol):
    def __call__(self, x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
        """`x`: float [N, 3, 32, 32] in [0, 1]; returns a new tensor of the same shape in [0, 1]."""
        ...


def check_severity(severity: int) -> None:
    integral = isinstance(severity, numbers.Integral) and not isinstance(severity, bool)
    if not integral or int(severity) not in SEVERITIES:
        raise ConfigError(f"corruption severity must be one of 1..5, got {severity!r}")


def check_input(x: Tensor, severity: int) -> None:
    check_severity(severity)
    if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
        raise DataError(
            f"corruptions take float images [N, 3, H, W] in [0, 1], got {x.dtype} {tuple(x.shape)}"
        )
    if tuple(x.shape[2:]) != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(
            f"CIFAR-10-C corruptions are defined for {IMAGE_SIZE}x{IMAGE_SIZE} images, "
            f"got {x.shape[2]}x{x.shape[3]}"
        )


def at_severity(table: Sequence[P], x: Tensor, severity: int) -> P:
    """`table[severity - 1]` after checking the input contract."""
    check_input(x, severity)
    return table[int(severity) - 1]


def uniform(
    generator: torch.Generator, shape: Sequence[int], low: float, high: float, like: Tensor
) -> Tensor:
    u = torch.rand(tuple(shape), generator=generator, device=generator.device)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def normal(
    generator: torch.Generator, shape: Sequence[int], mean: float, std: float, like: Tensor
) -> Tensor:
    z = torch.randn(tuple(shape), generator=generator, device=generator.device)
    return (mean + std * z).to(device=like.device, dtype=like.dtype)


def randint(
    generator: torch.Generator, shape: Sequence[int], low: int, high: int, like: Tensor
) -> Tensor:
    """Integers in [low, high) (numpy's convention), as int64 on `like`'s device."""
    r = torch.randint(low, high, tuple(shape), generator=generator, device=generator.device)
    return r.to(like.device)


def to_uint8_levels(x: Tensor) -> Tensor:
    """Truncate to 8-bit levels like `np.uint8(x * 255)` in the official code (k/255 values)."""
    return (x * 255 + 1e-3).floor().clamp(0, 255) / 255


def round_uint8_levels(x: Tensor) -> Tensor:
    """Round to 8-bit levels, like writing a PNG (ImageMagick's output in the official code)."""
    return (x * 255).round().clamp(0, 255) / 255
