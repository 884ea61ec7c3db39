"""torchvision CIFAR source with generated batch files, missing data, and root resolution."""

from __future__ import annotations

import pickle
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets
import torchvision.datasets.cifar

from robench.data import load_source, make_splits, resolve_data_root
from robench.errors import ConfigError, DataError

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_fake_cifar10(root: Path, per_batch: int = 6, n_test: int = 5, seed: int = 0) -> dict:
    """The official python-pickle layout (str keys, as the py2 originals load with latin1)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    flat = {}
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels, "batch_label": name}, f, protocol=2)
        flat[name] = (data, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CLASSES, "num_vis": 3072}, f, protocol=2)
    return flat


@pytest.fixture
def trust_files(monkeypatch):
    """Generated files cannot match the official md5 sums."""
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


def to_nhwc(flat: np.ndarray) -> np.ndarray:
    return flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def test_loads_official_pickles(tmp_path, trust_files):
    flat = write_fake_cifar10(tmp_path)
    train, info = load_source("cifar10", tmp_path, "train", download=False)
    expected = np.concatenate([to_nhwc(flat[f"data_batch_{i}"][0]) for i in range(1, 6)])
    labels = [label for i in range(1, 6) for label in flat[f"data_batch_{i}"][1]]
    assert train.images.shape == (30, 32, 32, 3) and train.images.dtype == np.uint8
    np.testing.assert_array_equal(train.images, expected)
    np.testing.assert_array_equal(train.labels, labels)
    assert train.labels.dtype == np.int64
    assert train.classes == tuple(CLASSES)
    assert info == {
        "dataset": "CIFAR-10",
        "is_jpeg_copy": False,
        "content_hash": info["content_hash"],
        "source": "cifar10",
        "root": str(tmp_path),
    }
    test, test_info = load_source("cifar10", tmp_path, "test", download=False)
    np.testing.assert_array_equal(test.images, to_nhwc(flat["test_batch"][0]))
    assert test_info["content_hash"] != info["content_hash"]


def test_make_splits_on_torchvision_files(tmp_path, trust_files):
    write_fake_cifar10(tmp_path, per_batch=20, n_test=7)
    splits = make_splits("cifar10", tmp_path, download=False, test_subset=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 10, 3)
    assert splits.dataset == "CIFAR-10" and not splits.is_jpeg_copy


def test_missing_without_download(tmp_path):
    with pytest.raises(DataError) as err:
        load_source("cifar10", tmp_path / "empty", "train", download=False)
    message = str(err.value)
    assert "\n" not in message
    assert "CIFAR-10 not found under" in message and "download disabled" in message
    assert "--data-dir" in message and "ROBENCH_DATA" in message


def test_failed_download(tmp_path, monkeypatch):
    def offline(self):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets.CIFAR100, "download", offline)
    with pytest.raises(DataError) as err:
        load_source("cifar100", tmp_path, "test", download=True)
    message = str(err.value)
    assert "CIFAR-100 not found or downloaded under" in message
    assert "URLError" in message and "\n" not in message


def test_unknown_source(tmp_path):
    with pytest.raises(ConfigError, match="valid sources: cifar10, cifar100, imagefolder"):
        make_splits("mnist", tmp_path)


def test_resolve_data_root_order(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBENCH_DATA", str(tmp_path / "from-env"))
    assert resolve_data_root(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_root(None) == tmp_path / "from-env"
    monkeypatch.delenv("ROBENCH_DATA")
    default = resolve_data_root(None)
    assert default.name == "data" and "robench" in str(default)
    assert default.is_absolute()
