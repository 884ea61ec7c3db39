"""Fixtures for the data tests: a private decode cache and tiny generated image folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def private_cache(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, monkeypatch
) -> None:
    """Keep tests out of the user's cache; slow tests on real data may reuse it (warm)."""
    if request.node.get_closest_marker("slow") is None:
        monkeypatch.setenv("ROBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))


FolderFactory = Callable[..., dict[str, tuple[np.ndarray, np.ndarray]]]


@pytest.fixture
def make_folder() -> FolderFactory:
    """Write root/{train,test}/<class>/NNNN.<ext> and return the expected arrays per split.

    Files are numbered per class (like the JPEG copy), so the expected order interleaves the
    classes by rank. Pixels are random so any reordering or channel mix-up shows; PNG keeps
    them exact.
    """

    def make(
        root: Path,
        classes: tuple[str, ...] = ("cat", "ant", "bee"),
        per_class: dict[str, int] | None = None,
        size: int = 32,
        ext: str = ".png",
        seed: int = 0,
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        per_class = per_class or {"train": 4, "test": 2}
        rng = np.random.default_rng(seed)
        expected = {}
        for split, n in per_class.items():
            written = []
            for label, name in enumerate(sorted(classes)):
                folder = root / split / name
                folder.mkdir(parents=True)
                for i in range(n):
                    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                    Image.fromarray(img).save(folder / f"{i:04d}{ext}", quality=90)
                    written.append((i, label, img))
            written.sort(key=lambda t: (t[0], t[1]))
            images = np.stack([img for _, _, img in written])
            expected[split] = (images, np.asarray([lab for _, lab, _ in written], dtype=np.int64))
        return expected

    return make
