"""In-memory datasets: CIFAR-sized data fits in RAM, so every split is a pair of numpy arrays.

Keeping images as one uint8 array (rather than a torch `Dataset` of files) lets the batch
iterator move the whole split to the GPU once and lets splits and subsets be plain index
operations that are cheap, exact and reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from robench.errors import DataError


@dataclass(frozen=True, eq=False)
class ArrayDataset:
    """Images (N, H, W, 3) uint8 and int64 labels, in a meaningful order.

    The order is the official order for a source's train and test sets and the seeded shuffle
    for the train/val parts of a split; `first(n)` relies on it to make subsets nested.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        images = np.ascontiguousarray(self.images)
        labels = np.ascontiguousarray(self.labels, dtype=np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}"
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(f"labels shape {labels.shape} does not match {images.shape[0]} images")
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self.images.shape[1:])
        return f"ArrayDataset({len(self)} images {shape}, {len(self.classes)} classes)"

    def subset(self, indices: np.ndarray) -> ArrayDataset:
        """Examples at `indices`, in that order (a copy, so the parent can be freed)."""
        idx = np.asarray(indices, dtype=np.int64)
        return ArrayDataset(self.images[idx], self.labels[idx], self.classes)

    def first(self, n: int | None) -> ArrayDataset:
        """The first `n` examples (None = all): subsets of every size share their prefix."""
        if n is None:
            return self
        if n < 0 or n > len(self):
            raise DataError(
                f"asked for the first {n} images but only {len(self)} are available; "
                f"use a subset size between 0 and {len(self)}"
            )
        return ArrayDataset(self.images[:n], self.labels[:n], self.classes)


@dataclass(frozen=True, eq=False)
class DataSplits:
    """Train/val/test plus the provenance that results and leaderboards must carry.

    `dataset` and `is_jpeg_copy` exist so a number measured on the lossy JPEG copy can never
    be reported as plain CIFAR-10; `content_hash` pins the exact decoded pixels.
    """

    train: ArrayDataset
    val: ArrayDataset
    test: ArrayDataset
    dataset: str
    is_jpeg_copy: bool
    source: str
    root: str
    content_hash: str

    @property
    def classes(self) -> tuple[str, ...]:
        return self.test.classes

    @property
    def num_classes(self) -> int:
        return len(self.test.classes)
