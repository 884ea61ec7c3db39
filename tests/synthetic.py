"""A small, learnable image folder: each class is a colour with a class-specific stripe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = tuple(f"class{i}" for i in range(10))


def make_image_folder(
    root: Path,
    train_per_class: int = 40,
    test_per_class: int = 10,
    size: int = 32,
    classes: tuple[str, ...] = CLASSES,
) -> Path:
    rng = np.random.default_rng(0)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = rng.integers(0, 60, (size, size, 3))
                image[..., label % 3] += 120
                row = (label * 3 * size // 32) % size
                image[row : row + 3 * size // 32, :, :] = 250
                Image.fromarray(image.clip(0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return root
