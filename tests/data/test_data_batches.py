"""BatchIterator: exact pixels, crop+flip semantics, determinism per (seed, epoch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robench.data import ArrayDataset, BatchIterator


def dataset(n: int = 37, size: int = 8, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(1, 256, (n, size, size, 3), dtype=np.uint8)  # no zeros: padding shows
    return ArrayDataset(images, np.arange(n) % 10, tuple("abcdefghij"))


def collect(it: BatchIterator) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*list(it), strict=True)
    return torch.cat(xs), torch.cat(ys)


def test_exact_pixels_without_augmentation():
    data = dataset()
    it = BatchIterator(data, 10)
    assert len(it) == 4
    batches = list(it)
    assert [len(y) for _, y in batches] == [10, 10, 10, 7]
    x, y = collect(it)
    assert x.dtype == torch.float32 and x.shape == (37, 3, 8, 8)
    assert x.min() >= 0.0 and x.max() <= 1.0
    nhwc = torch.from_numpy(data.images).permute(0, 3, 1, 2)
    assert torch.equal(torch.round(x * 255).to(torch.uint8), nhwc)
    assert y.dtype == torch.int64 and y.tolist() == data.labels.tolist()


@pytest.mark.fastpath
def test_drop_last_and_channels_last():
    it = BatchIterator(dataset(), 10, drop_last=True, channels_last=True)
    assert len(it) == 3 and len(list(it)) == 3
    x, _ = next(iter(it))
    assert x.is_contiguous(memory_format=torch.channels_last)


def candidates(image: np.ndarray, pad: int = 4) -> list[np.ndarray]:
    """All 81 crops x 2 flips of the zero-padded image (HWC)."""
    h, w, _ = image.shape
    out = []
    for src in (image, image[:, ::-1]):
        padded = np.pad(src, ((pad, pad), (pad, pad), (0, 0)))
        for oy in range(2 * pad + 1):
            for ox in range(2 * pad + 1):
                out.append(padded[oy : oy + h, ox : ox + w])
    return out


def test_augmented_images_are_crops_of_padded_flips():
    data = dataset()
    it = BatchIterator(data, 16, shuffle=True, augment=True, seed=3)
    x, y = collect(it)
    assert x.shape == (37, 3, 8, 8) and x.min() >= 0.0 and x.max() <= 1.0
    # the shuffle is drawn before any augmentation, so a plain iterator reveals the order
    plain = BatchIterator(data, 16, shuffle=True, seed=3)
    assert torch.equal(y, collect(plain)[1])
    perm = _order(data, plain)
    got = to_nhwc_uint8(x)
    changed = 0
    for k in range(0, 37, 3):
        original = data.images[perm[k]]
        assert any(np.array_equal(got[k], c) for c in candidates(original))
        changed += not np.array_equal(got[k], original)
    assert changed > 0


def to_nhwc_uint8(x: torch.Tensor) -> np.ndarray:
    return torch.round(x * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _order(data: ArrayDataset, it: BatchIterator) -> list[int]:
    """Dataset indices in the order a non-augmenting iterator yields them."""
    lookup = {img.tobytes(): i for i, img in enumerate(data.images)}
    return [lookup[img.tobytes()] for img in to_nhwc_uint8(collect(it)[0])]


def test_shuffle_covers_each_example_once_and_depends_on_epoch():
    data = dataset()
    it = BatchIterator(data, 8, shuffle=True, seed=1)
    first = _order(data, it)
    assert sorted(first) == list(range(37)) and first != list(range(37))
    assert _order(data, it) == first  # no set_epoch: the same epoch again
    it.set_epoch(1)
    second = _order(data, it)
    assert sorted(second) == list(range(37)) and second != first
    other_seed = BatchIterator(data, 8, shuffle=True, seed=2)
    assert _order(data, other_seed) != first


def test_resuming_at_an_epoch_reproduces_its_batches():
    data = dataset()
    a = BatchIterator(data, 8, shuffle=True, augment=True, seed=5)
    for epoch in range(3):
        a.set_epoch(epoch)
        expected = collect(a)
    b = BatchIterator(data, 8, shuffle=True, augment=True, seed=5)
    b.set_epoch(2)
    got = collect(b)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    b.set_epoch(1)
    assert not torch.equal(collect(b)[0], expected[0])


@pytest.mark.gpu
def test_same_code_runs_on_cuda():
    data = dataset()
    plain = BatchIterator(data, 37, device="cuda")
    x, y = next(iter(plain))
    assert x.is_cuda and y.is_cuda and y.dtype == torch.int64
    np.testing.assert_array_equal(to_nhwc_uint8(x), data.images)
    it = BatchIterator(data, 16, device="cuda", shuffle=True, augment=True, channels_last=True)
    xa, _ = next(iter(it))
    assert xa.is_contiguous(memory_format=torch.channels_last)
    perm = _order(data, BatchIterator(data, 16, device="cuda", shuffle=True))
    got = to_nhwc_uint8(xa)
    for k in range(4):
        assert any(np.array_equal(got[k], c) for c in candidates(data.images[perm[k]]))
