"""Shared fixtures: real data and real, externally trained models, located by env variables.

ROBENCH_DATA     the CIFAR-10 image folder (here: ../shared/data/cifar10-jpeg)
ROBENCH_EXACT    exact pixels of the first 1,017 test images (../shared/data/cifar10-exact)
ROBENCH_EXTERNAL the folder with resnet20-standard.pth and resnet20-adv.pth (../shared/external)
.ci/run sets all three; tests that need one skip where it is not set.

Markers (registered in pyproject.toml) work by themselves: `gpu` tests are skipped here when
there is no CUDA, and a test that uses one of the external fixtures below is marked
`external` even if its module forgot to say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from external_resnet20 import resnet20

from robench.data import load_source

# Plain asserts in the shared helpers report like those in test modules (before they import it).
pytest.register_assert_rewrite("helpers")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, one torch thread per worker (and per subprocess a test starts)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


EXTERNAL_FIXTURES = frozenset({"standard_resnet20", "adversarial_resnet20", "exact_test_batch"})


@pytest.hookimpl(tryfirst=True)  # before `-m` selects on the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_cuda = pytest.mark.skip(reason="gpu: needs CUDA, and torch.cuda.is_available() is False")
    cuda = torch.cuda.is_available()
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if uses & EXTERNAL_FIXTURES and item.get_closest_marker("external") is None:
            item.add_marker(pytest.mark.external)
        if not cuda and item.get_closest_marker("gpu") is not None:
            item.add_marker(no_cuda)


def _env_dir(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Decoded-data cache shared by the session but never the user's own cache dir."""
    monkeypatch.setenv("ROBENCH_CACHE", _session_cache(tmp_path_factory))


def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    return os.environ.get("ROBENCH_TEST_CACHE") or str(tmp_path_factory.getbasetemp() / "cache")


@pytest.fixture(scope="session")
def exact_test_batch(tmp_path_factory):
    """The first 1,000 official CIFAR-10 test images (exact pixels) in [0, 1], and labels."""
    root = _env_dir("ROBENCH_EXACT")
    if root is None:
        pytest.skip("set ROBENCH_EXACT to the exact-pixel CIFAR-10 folder")
    os.environ["ROBENCH_CACHE"] = _session_cache(tmp_path_factory)
    test, _ = load_source("imagefolder", root, "test")
    x = torch.from_numpy(test.images[:1000]).permute(0, 3, 1, 2).float() / 255
    return x.contiguous(), torch.from_numpy(test.labels[:1000])


def _external(name: str) -> torch.nn.Module:
    folder = _env_dir("ROBENCH_EXTERNAL")
    if folder is None:
        pytest.skip("set ROBENCH_EXTERNAL to the folder of externally trained checkpoints")
    payload = torch.load(folder / f"{name}.pth", weights_only=True, map_location="cpu")
    model = resnet20()
    model.load_state_dict(payload["state_dict"], strict=True)
    return model.eval()


@pytest.fixture(scope="session")
def standard_resnet20() -> torch.nn.Module:
    """A normally trained CIFAR ResNet-20 from elsewhere (~93% clean accuracy)."""
    return _external("resnet20-standard")


@pytest.fixture(scope="session")
def adversarial_resnet20() -> torch.nn.Module:
    """A PGD-trained CIFAR ResNet-20 from elsewhere: robust accuracy well between 0 and clean."""
    return _external("resnet20-adv")
