"""JPEG compression: encode and decode every image with PIL at a low quality (4:2:0 chroma)."""

import io

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from robench.corruptions import _ops
from robench.corruptions.base import at_severity
from robench.corruptions.registry import CORRUPTIONS

QUALITY = (80, 65, 58, 50, 40)  # PIL JPEG quality


@CORRUPTIONS.register("jpeg_compression")
def jpeg_compression(x: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    quality = at_severity(QUALITY, x, severity)
    images = _ops.to_uint8_hwc(x)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[i] = np.asarray(decoded.convert("RGB"))
    return _ops.from_uint8_hwc(out, x)
