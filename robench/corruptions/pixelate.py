"""Pixelate: box-downsample to a fraction of the size and box-upsample back, with PIL.

PIL's BOX resampling on 8-bit images is what the official code used; reimplementing its
fixed-point rounding would only risk off-by-one pixels, and 32x32 resizes are cheap.
"""

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity
from robench.corruptions.registry import CORRUPTIONS

SCALE = (0.95, 0.9, 0.85, 0.75, 0.65)  # 32 px -> int(32 * scale) px -> 32 px


@CORRUPTIONS.register("pixelate")
def pixelate(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    scale = at_severity(SCALE, x, severity)
    h, w = x.shape[-2:]
    small = (int(w * scale), int(h * scale))
    out = np.empty((x.shape[0], h, w, 3), dtype=np.uint8)
    for i, image in enumerate(_ops.to_uint8_hwc(x)):
        low = Image.fromarray(image).resize(small, Image.Resampling.BOX)
        out[i] = np.asarray(low.resize((w, h), Image.Resampling.BOX))
    return _ops.from_uint8_hwc(out, x)
