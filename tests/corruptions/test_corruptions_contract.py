"""What every registered corruption promises, for each name in `CORRUPTIONS` and severity 1-5.

A registered corruption is `corrupt(x, severity, generator)` on float images [N, 3, 32, 32]
in [0, 1] (see robench/corruptions/base.py). Each keeps shape, dtype and range, changes the
image, leaves its input alone, and is a function of (image, severity, seed): the same seed
gives the same output. Nine corruptions draw random numbers (noise, kernels, crops, angles),
so another seed gives another output; the other six are pure functions of the image and must
ignore the seed. A newly registered corruption fails here until it is put in one of the two.
"""

from __future__ import annotations

import pytest
import torch
from helpers import smooth_images

import robench.corruptions as C
from robench.corruptions import CORRUPTIONS, SEVERITIES
from robench.errors import ConfigError

RANDOM = frozenset(
    {
        "elastic_transform",  # affine jitter and displacement field
        "fog",  # plasma fractal
        "frost",  # texture and crop
        "gaussian_noise",
        "glass_blur",  # local pixel swaps
        "impulse_noise",
        "motion_blur",  # blur angle
        "shot_noise",  # Poisson counts
        "snow",  # flakes and their angle
    }
)
DETERMINISTIC = frozenset(
    {"brightness", "contrast", "defocus_blur", "jpeg_compression", "pixelate", "zoom_blur"}
)
NAMES = CORRUPTIONS.names()
PAIRS = [(name, s) for name in NAMES for s in SEVERITIES]


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return smooth_images()


def corrupt(name: str, x: torch.Tensor, severity: int, seed: int = 0) -> torch.Tensor:
    """The registered function itself, with a generator seeded by `seed`."""
    return CORRUPTIONS.get(name)(x, severity, torch.Generator().manual_seed(seed))


def test_registry_has_the_fifteen_official_names():
    assert C.CORRUPTIONS.names() == sorted(C.CORRUPTION_NAMES)
    assert len(C.CORRUPTION_NAMES) == 15 and C.SEVERITIES == (1, 2, 3, 4, 5)
    with pytest.raises(ConfigError, match="valid names"):
        C.CORRUPTIONS.get("speckle_noise")


@pytest.mark.parametrize("name", NAMES)
def test_every_corruption_is_known_to_be_random_or_not(name):
    assert (name in RANDOM) != (name in DETERMINISTIC), (
        f"corruption {name!r} is registered but in neither RANDOM nor DETERMINISTIC of "
        f"{__file__}: say whether it draws from its generator"
    )


@pytest.mark.parametrize(("name", "severity"), PAIRS)
def test_shape_range_determinism_and_change(images, name, severity):
    out = corrupt(name, images, severity)
    assert out.shape == images.shape and out.dtype == images.dtype
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    assert torch.equal(out, corrupt(name, images, severity))  # same seed, same corruption
    assert (out - images).abs().mean() > 1e-3  # it does something
    assert torch.equal(images, smooth_images())  # and leaves its input alone


@pytest.mark.parametrize("name", NAMES)
def test_float64_images_stay_float64(images, name):
    x = images.double()
    for severity in SEVERITIES:
        out = corrupt(name, x, severity)
        assert out.dtype == torch.float64 and out.shape == x.shape, severity
        assert float(out.min()) >= 0 and float(out.max()) <= 1, severity
        # the same corruption as in float32, up to rounding (and an 8-bit level in JPEG/pixelate)
        assert (out.float() - corrupt(name, images, severity)).abs().max() <= 1 / 255, severity


@pytest.mark.parametrize(("name", "severity"), PAIRS)
def test_another_seed_changes_exactly_the_random_corruptions(images, name, severity):
    a, b = corrupt(name, images, severity, seed=0), corrupt(name, images, severity, seed=1)
    if name in RANDOM:
        assert not torch.equal(a, b), f"{name} ignores its generator"
    else:
        assert torch.equal(a, b), f"{name} depends on its generator"
