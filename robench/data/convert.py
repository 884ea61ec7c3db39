"""uint8 HWC images -> float32 CHW tensors in [0, 1]: the one place that conversion is written.

Every model, attack and corruption in robench takes float images in [0, 1] (normalisation is a
layer of the model), while every data set is held as uint8 (N, H, W, 3) arrays. The two steps,
moving the channel axis and scaling by 1/255, are kept apart because the training iterator
augments on the uint8 CHW tensor (4x fewer bytes to move) before it scales.
"""

from __future__ import annotations

import numpy as np
import torch


def to_chw(
    images: np.ndarray | torch.Tensor,
    device: torch.device | str = "cpu",
    *,
    contiguous: bool = True,
) -> torch.Tensor:
    """(N, H, W, C) or (H, W, C) uint8 -> (N, C, H, W) / (C, H, W) on `device`.

    The data is copied to the device first and transposed there (fast on a GPU).
    `contiguous=False` returns the transposed view (channels-last strides) without a copy.
    """
    tensor = torch.from_numpy(images) if isinstance(images, np.ndarray) else images
    tensor = tensor.to(device)
    chw = tensor.permute(0, 3, 1, 2) if tensor.dim() == 4 else tensor.permute(2, 0, 1)
    return chw.contiguous() if contiguous else chw


def to_unit(
    images: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format
) -> torch.Tensor:
    """uint8 (any shape) -> float32 / 255 in [0, 1], in `memory_format`.

    `torch.preserve_format` keeps the input's strides (the corruption generator's inputs).
    """
    x = images.float().div_(255.0)
    if memory_format is torch.preserve_format:
        return x
    if memory_format is torch.channels_last and x.dim() != 4:
        memory_format = torch.contiguous_format
    return x.contiguous(memory_format=memory_format)


def layout(channels_last: bool) -> torch.memory_format:
    return torch.channels_last if channels_last else torch.contiguous_format


def to_float_chw(
    images: np.ndarray | torch.Tensor,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 HWC images -> float32 CHW in [0, 1] on `device`."""
    return to_unit(to_chw(images, device), layout(channels_last))
