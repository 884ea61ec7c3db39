"""The real CIFAR-10 JPEG copy, where ROBENCH_DATA points at it (decoded once, then cached)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from robench.data import make_splits


@pytest.mark.slow
def test_jpeg_copy_splits():
    root = os.environ.get("ROBENCH_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("set ROBENCH_DATA to a CIFAR-10 folder to run this")
    splits = make_splits("cifar10", test_subset=100)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (45000, 5000, 100)
    assert splits.train.images.shape[1:] == (32, 32, 3)
    assert splits.classes[0] == "airplane" and splits.num_classes == 10
    assert splits.is_jpeg_copy == ("JPEG" in splits.dataset)
    if Path(root).resolve() == Path("/work/shared/data/cifar10-jpeg"):
        assert splits.dataset == "CIFAR-10 (JPEG copy: cifar10-jpeg)"
