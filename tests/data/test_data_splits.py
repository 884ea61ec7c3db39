"""Seeded train/val split and nested subsets."""

from __future__ import annotations

import numpy as np
import pytest

from robench.data import ArrayDataset, make_splits
from robench.errors import ConfigError, DataError


@pytest.fixture
def root(tmp_path, make_folder):
    make_folder(tmp_path / "f", per_class={"train": 20, "test": 5}, size=8)
    return tmp_path / "f"


def fingerprints(data: ArrayDataset) -> list[bytes]:
    return [img.tobytes() for img in data.images]


def test_sizes_disjoint_and_complete(root):
    splits = make_splits("imagefolder", root)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54, 6, 15)
    train, val = set(fingerprints(splits.train)), set(fingerprints(splits.val))
    assert not train & val and len(train | val) == 60
    assert splits.source == "imagefolder" and splits.root == str(root)
    assert splits.classes == ("ant", "bee", "cat") and splits.num_classes == 3
    assert len(splits.content_hash) == 32


def test_deterministic_per_seed(root):
    a, b = make_splits("imagefolder", root, seed=1), make_splits("imagefolder", root, seed=1)
    c = make_splits("imagefolder", root, seed=2)
    assert fingerprints(a.val) == fingerprints(b.val)
    assert fingerprints(a.val) != fingerprints(c.val)
    assert a.content_hash == c.content_hash  # same pixels, whatever the split


def test_subsets_are_nested_prefixes(root):
    full = make_splits("imagefolder", root)
    small = make_splits("imagefolder", root, train_subset=10, val_subset=2, test_subset=4)
    big = make_splits("imagefolder", root, train_subset=30, val_subset=5)
    assert fingerprints(small.train) == fingerprints(big.train)[:10]
    assert fingerprints(big.train) == fingerprints(full.train)[:30]
    assert fingerprints(small.val) == fingerprints(full.val)[:2]
    assert fingerprints(small.test) == fingerprints(full.test)[:4]
    np.testing.assert_array_equal(small.test.labels, [0, 1, 2, 0])  # interleaved prefix


def test_val_fraction(root):
    splits = make_splits("imagefolder", root, val_fraction=0.25)
    assert (len(splits.train), len(splits.val)) == (45, 15)
    with pytest.raises(ConfigError, match="val_fraction"):
        make_splits("imagefolder", root, val_fraction=1.0)


@pytest.mark.parametrize(
    ("option", "value"), [("train_subset", 55), ("val_subset", 7), ("test_subset", 16)]
)
def test_subset_too_large(root, option, value):
    with pytest.raises(DataError, match=f"{option}={value} but"):
        make_splits("imagefolder", root, **{option: value})


def test_first_and_subset():
    data = ArrayDataset(
        np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3), np.arange(5), ("a",)
    )
    assert len(data.first(None)) == 5 and data.first(2).labels.tolist() == [0, 1]
    assert data.subset(np.array([4, 1])).labels.tolist() == [4, 1]
    assert data.labels.dtype == np.int64
    with pytest.raises(DataError, match="only 5 are available"):
        data.first(6)


def test_train_and_test_classes_must_agree(tmp_path, make_folder):
    make_folder(tmp_path / "f")
    (tmp_path / "f" / "test" / "cat").rename(tmp_path / "f" / "test" / "cow")
    with pytest.raises(DataError, match="different classes"):
        make_splits("imagefolder", tmp_path / "f")
