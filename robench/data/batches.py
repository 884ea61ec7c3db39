"""Batches straight from device memory, with augmentation as batched tensor ops.

A CIFAR training split is ~140 MB as uint8, so it lives on the GPU for the whole run: no
DataLoader workers, no host-to-device copies per step, and random crop + flip for a whole
batch in a few kernels instead of a per-image Python loop (which would starve a fast GPU).
The order comes from a generator seeded by (seed, epoch) and each batch's augmentation from
one seeded by (seed, epoch, batch index), so resuming at epoch k, or at batch i of epoch k,
replays exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from robench.data.convert import layout, to_chw, to_unit
from robench.data.dataset import ArrayDataset

CROP_PADDING = 4


def epoch_seed(seed: int, epoch: int, *more: int) -> int:
    """A well-mixed 63-bit seed: nearby (seed, epoch, ...) tuples give unrelated streams."""
    state = np.random.SeedSequence([seed, epoch, *more]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 32 | int(state[1])) & (2**63 - 1)


def random_crop_flip(
    images: torch.Tensor, generator: torch.Generator, padding: int = CROP_PADDING
) -> torch.Tensor:
    """Zero-pad by `padding`, crop back to size at a random offset, flip half horizontally.

    One `gather` over flattened pixel indices: ~5x faster on CPU than 4-D advanced indexing,
    and it works on uint8 (4x fewer bytes to move than floats).
    """
    b, c, h, w = images.shape
    dev = images.device
    hp, wp = h + 2 * padding, w + 2 * padding
    padded = F.pad(images, (padding, padding, padding, padding)).view(b, c, hp * wp)
    oy = torch.randint(0, 2 * padding + 1, (b, 1, 1), generator=generator, device=dev)
    ox = torch.randint(0, 2 * padding + 1, (b, 1, 1), generator=generator, device=dev)
    flip = torch.randint(0, 2, (b, 1, 1), generator=generator, device=dev).bool()
    cols = torch.arange(w, device=dev).view(1, 1, w)
    cols = torch.where(flip, w - 1 - cols, cols) + ox  # reading columns backwards mirrors the crop
    rows = torch.arange(h, device=dev).view(1, h, 1) + oy
    flat = (rows * wp + cols).view(b, 1, h * w).expand(b, c, h * w)
    return padded.gather(2, flat).view(b, c, h, w)


class BatchIterator:
    """(images float32 NCHW in [0, 1], labels int64) batches on `device`.

    Call `set_epoch(e)` before each epoch when shuffling or augmenting; iterating twice without
    it replays the same epoch, which is what resuming needs.
    """

    def __init__(
        self,
        data: ArrayDataset,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        shuffle: bool = False,
        augment: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.device = torch.device(device)
        self.images = to_chw(data.images, self.device)  # uint8, once per run
        self.labels = torch.from_numpy(data.labels).to(self.device)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.drop_last = drop_last
        self.seed = seed
        self.channels_last = channels_last
        self.epoch = 0

    @property
    def num_examples(self) -> int:
        return int(self.labels.shape[0])

    def __len__(self) -> int:
        n, bs = self.num_examples, self.batch_size
        return n // bs if self.drop_last else -(-n // bs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def batch_len(self, index: int) -> int:
        """How many examples batch `index` has (the last one may be short)."""
        return max(0, min(self.batch_size, self.num_examples - index * self.batch_size))

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch `index` of this epoch alone: what a rank of a sharded evaluation takes."""
        return next(self.iterate(index))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.iterate()

    def iterate(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches from batch index `start` on (a mid-epoch resume skips the rest)."""
        generator = torch.Generator(device=self.device)
        generator.manual_seed(epoch_seed(self.seed, self.epoch))
        n = self.num_examples
        if self.shuffle:
            order = torch.randperm(n, generator=generator, device=self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(start, len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            x = self.images[idx]
            if self.augment:
                generator.manual_seed(epoch_seed(self.seed, self.epoch, i))
                x = random_crop_flip(x, generator)
            yield to_unit(x, layout(self.channels_last)), self.labels[idx]


class TensorBatches:
    """Float images already in [0, 1] (e.g. kept adversarial examples), batched in order.

    The same interface as an unshuffled `BatchIterator`, so the flags primitive scores a model
    on crafted examples exactly as it scores it on a data set.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.channels_last = channels_last

    @property
    def num_examples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)

    def batch_len(self, index: int) -> int:
        return max(0, min(self.batch_size, self.num_examples - index * self.batch_size))

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        x = self.images[part].to(self.device)
        return x.contiguous(memory_format=layout(self.channels_last)), self.labels[part].to(
            self.device
        )
