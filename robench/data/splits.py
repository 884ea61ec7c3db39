"""Train/val/test splits with a seeded, nested validation split.

CIFAR has no official validation set, so one is carved from the training set with a seeded
permutation. Subsets are prefixes of the shuffled parts: a 5k-image run sees a subset of what a
10k-image run sees, which keeps dataset-size ablations comparable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from robench.data.dataset import ArrayDataset, DataSplits
from robench.data.sources import get_source, load_source, resolve_data_root
from robench.errors import ConfigError, DataError

_LOADED: dict[tuple[str, str, str], tuple[ArrayDataset, dict]] = {}


def _load_once(
    source: str, root: Path, split: str, download: bool, progress: Callable[[str], None] | None
) -> tuple[ArrayDataset, dict]:
    """load_source, once per process: a suite's twenty runs need not re-hash 60,000 files."""
    key = (source, str(root), split)
    if key not in _LOADED:
        if len(_LOADED) >= 4:  # two data sets' worth of train + test at most
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_source(source, root, split, download, progress)
    return _LOADED[key]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into the official training set; a pure function of the seed."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    n_val = round(n * val_fraction)
    if n_val < 1 or n_val >= n:
        raise DataError(
            f"cannot split {n} training images with val_fraction={val_fraction} "
            "(one side would be empty); use more training images or another val_fraction"
        )
    perm = np.random.Generator(np.random.PCG64(seed)).permutation(n)
    return perm[n_val:], perm[:n_val]


def _prefix(n: int | None, available: int, option: str, part: str) -> int:
    if n is None:
        return available
    if not 0 <= n <= available:
        raise DataError(
            f"{option}={n} but the {part} set has only {available} images; "
            f"pass a {option} between 0 and {available}"
        )
    return n


def make_splits(
    source: str,
    data_dir: str | Path | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    train_subset: int | None = None,
    val_subset: int | None = None,
    test_subset: int | None = None,
    download: bool = True,
    progress: Callable[[str], None] | None = None,
) -> DataSplits:
    """Load `source` and split it; the test set keeps the official order (first n = the
    RobustBench-style quick-evaluation subset)."""
    get_source(source)  # an unknown name fails before any disk or network access
    root = resolve_data_root(data_dir)
    full_train, train_info = _load_once(source, root, "train", download, progress)
    test, test_info = _load_once(source, root, "test", download, progress)
    if full_train.classes != test.classes:
        raise DataError(
            f"train and test under {root} have different classes ({len(full_train.classes)} vs "
            f"{len(test.classes)}); give both splits the same class folders"
        )
    train_idx, val_idx = split_indices(len(full_train), val_fraction, seed)
    n_train = _prefix(train_subset, len(train_idx), "train_subset", "training")
    n_val = _prefix(val_subset, len(val_idx), "val_subset", "validation")
    n_test = _prefix(test_subset, len(test), "test_subset", "test")
    train = full_train.subset(train_idx[:n_train])
    val = full_train.subset(val_idx[:n_val])
    test = test.subset(np.arange(n_test))  # a copy, so the full test set can be freed
    combined = f"{train_info['content_hash']}:{test_info['content_hash']}".encode()
    return DataSplits(
        train=train,
        val=val,
        test=test,
        dataset=test_info["dataset"],
        is_jpeg_copy=bool(train_info["is_jpeg_copy"] or test_info["is_jpeg_copy"]),
        source=source,
        root=str(root),
        content_hash=hashlib.blake2b(combined, digest_size=16).hexdigest(),
    )


def load_test(
    source: str,
    data_dir: str | Path | None = None,
    *,
    n: int | None = None,
    download: bool = True,
) -> tuple[ArrayDataset, dict]:
    """The first n official test images and their provenance (dataset, content hash, ...).

    Evaluation needs only the test split; this skips loading and splitting the training set.
    """
    get_source(source)
    root = resolve_data_root(data_dir)
    test, info = _load_once(source, root, "test", download, None)
    n_test = _prefix(n, len(test), "--n", "test")
    return test.subset(np.arange(n_test)), info
