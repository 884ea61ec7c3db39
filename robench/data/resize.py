"""Bring a data set of another image size to the model's input size, once, in batches.

Pretraining may use any image folder (labels unused); the trunk it trains must see the same
input size as fine-tuning, so larger or smaller images are resized (antialiased) up front.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from robench.data.convert import to_chw
from robench.data.dataset import ArrayDataset


def resize_dataset(data: ArrayDataset, size: int, chunk: int = 2048) -> ArrayDataset:
    if data.images.shape[1:3] == (size, size):
        return data
    out = np.empty((len(data), size, size, 3), dtype=np.uint8)
    for start in range(0, len(data), chunk):
        part = to_chw(data.images[start : start + chunk], contiguous=False).float()
        resized = F.interpolate(part, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + chunk] = resized.round().clamp(0, 255).byte().permute(0, 2, 3, 1)
    return ArrayDataset(out, data.labels, data.classes)
