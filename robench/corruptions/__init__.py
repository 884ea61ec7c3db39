"""CIFAR-10-C (Hendrycks & Dietterich 2019): 15 corruptions x 5 severities.

Every corruption is one file registered in `CORRUPTIONS` under its official name, a function
`corrupt(x, severity, generator)` on float [N, 3, 32, 32] images in [0, 1] that runs batched on
any device. `source` loads the official .npy files or generates (and caches) the corrupted test
sets; `preview.contact_sheet` draws every corruption and severity for one image.
"""

from robench.corruptions import (  # noqa: F401  (each module registers its corruption)
    brightness,
    contrast,
    defocus_blur,
    elastic_transform,
    fog,
    frost,
    gaussian_noise,
    glass_blur,
    impulse_noise,
    jpeg_compression,
    motion_blur,
    pixelate,
    shot_noise,
    snow,
    zoom_blur,
)
from robench.corruptions.base import SEVERITIES, CorruptionFn
from robench.corruptions.registry import CORRUPTIONS
from robench.corruptions.source import (
    CORRUPTION_NAMES,
    GENERATOR_VERSION,
    corrupt,
    corrupted_test_set,
    generate,
    generate_cached,
    load_official,
)

__all__ = [
    "CORRUPTIONS",
    "CORRUPTION_NAMES",
    "GENERATOR_VERSION",
    "SEVERITIES",
    "CorruptionFn",
    "corrupt",
    "corrupted_test_set",
    "generate",
    "generate_cached",
    "load_official",
]
