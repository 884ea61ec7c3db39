"""Shared fixtures: the real JPEG CIFAR-10 copy (via ROBENCH_DATA) and a tiny trained model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from robench.data import BatchIterator, make_splits
from robench.models import create

REAL_DATA = os.environ.get("ROBENCH_DATA")


def _real_data_available() -> bool:
    return bool(REAL_DATA) and Path(REAL_DATA, "train").is_dir()


requires_real_data = pytest.mark.skipif(
    not _real_data_available(), reason="set ROBENCH_DATA to the CIFAR-10 image folder"
)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Decoded-data cache shared by the session but never the user's own cache dir."""
    cache = os.environ.get("ROBENCH_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    monkeypatch.setenv("ROBENCH_CACHE", cache)


@pytest.fixture(scope="session")
def real_splits(tmp_path_factory: pytest.TempPathFactory):
    if not _real_data_available():
        pytest.skip("set ROBENCH_DATA to the CIFAR-10 image folder")
    cache = os.environ.get("ROBENCH_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")
    os.environ["ROBENCH_CACHE"] = cache
    return make_splits("cifar10", REAL_DATA, seed=0, train_subset=8000)


@pytest.fixture(scope="session")
def standard_model(real_splits):
    """preact_tiny trained normally for 3 epochs on 8,000 images: ~55% TA, no robustness."""
    torch.manual_seed(0)
    model = create("preact_tiny")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    batches = BatchIterator(real_splits.train, 128, shuffle=True, augment=True, seed=0)
    model.train()
    for epoch in range(3):
        batches.set_epoch(epoch)
        for x, y in batches:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def test_batch(real_splits):
    """The first 1,000 test images in official order, as float tensors in [0, 1]."""
    test = real_splits.test.first(1000)
    x = torch.from_numpy(test.images).permute(0, 3, 1, 2).float() / 255
    return x.contiguous(), torch.from_numpy(test.labels)
