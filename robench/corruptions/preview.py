"""A contact sheet of every corruption and severity for one image, to eyeball the generator.

Rows are the corruptions in the official order, columns the clean image and severities 1-5;
pixels are enlarged by nearest-neighbour `scale` so 32x32 structure stays visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor

from robench.atomic import atomic_write
from robench.corruptions.base import SEVERITIES
from robench.corruptions.source import CORRUPTION_NAMES, GENERATOR_VERSION, corrupt

LABEL_WIDTH = 130  # pixels for the row names
HEADER_HEIGHT = 22  # pixels for the column names
GAP = 2  # pixels between cells
BACKGROUND = (255, 255, 255)
COLUMNS = ("clean", *(f"severity {s}" for s in SEVERITIES))


def sheet_size(scale: int, rows: int = len(CORRUPTION_NAMES)) -> tuple[int, int]:
    """(width, height) in pixels of a contact sheet."""
    cell = 32 * scale
    return (
        LABEL_WIDTH + len(COLUMNS) * (cell + GAP),
        HEADER_HEIGHT + rows * (cell + GAP),
    )


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _tile(x: Tensor, scale: int) -> Image.Image:
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(arr)).resize(
        (32 * scale, 32 * scale), Image.Resampling.NEAREST
    )


def contact_sheet(image: Tensor, out_png: Path, seed: int = 0, scale: int = 4) -> Path:
    """Draw `image` (float [3, 32, 32] in [0, 1]) under all corruptions and severities."""
    if image.shape != (3, 32, 32) or not image.is_floating_point():
        raise ValueError(f"contact_sheet takes one float image [3, 32, 32], got {image.shape}")
    cell = 32 * scale
    sheet = Image.new("RGB", sheet_size(scale), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    for j, title in enumerate(COLUMNS):
        draw.text((LABEL_WIDTH + j * (cell + GAP) + 4, 4), title, fill=(0, 0, 0), font=font)
    draw.text((4, 4), f"generator {GENERATOR_VERSION}", fill=(90, 90, 90), font=font)
    x = image.unsqueeze(0).float()
    clean = _tile(image, scale)
    for i, name in enumerate(CORRUPTION_NAMES):
        top = HEADER_HEIGHT + i * (cell + GAP)
        draw.text((4, top + cell // 2 - 8), name, fill=(0, 0, 0), font=font)
        sheet.paste(clean, (LABEL_WIDTH, top))
        for j, severity in enumerate(SEVERITIES, start=1):
            g = torch.Generator().manual_seed(seed)
            y = corrupt(name, x, severity, g)[0]
            sheet.paste(_tile(y, scale), (LABEL_WIDTH + j * (cell + GAP), top))
    out_png = Path(out_png)
    atomic_write(out_png, lambda tmp: sheet.save(tmp, format="PNG"))
    return out_png
