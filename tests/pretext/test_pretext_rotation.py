"""Rotation: balanced labels, exact rot90 inputs, reproducible batches."""

from __future__ import annotations

import pytest
import torch

from robench.models import create
from robench.pretext import create_task


def _task():
    torch.manual_seed(0)
    return create_task("rotation", create("preact_tiny"))


@pytest.mark.parametrize("n", [16, 64, 10, 7])
def test_labels_are_balanced_within_each_batch(n):
    batch = _task().make_batch(torch.rand(n, 3, 32, 32), torch.Generator().manual_seed(n))
    counts = torch.bincount(batch.targets, minlength=4)
    assert batch.targets.dtype == torch.int64 and batch.targets.shape == (n,)
    if n % 4 == 0:
        assert counts.tolist() == [n // 4] * 4
    else:
        assert int(counts.max() - counts.min()) <= 1


def test_each_input_is_the_original_rotated_by_its_label():
    x = torch.rand(12, 3, 32, 32)
    x_before = x.clone()
    batch = _task().make_batch(x, torch.Generator().manual_seed(1))
    assert torch.equal(x, x_before)
    for image, rotated, k in zip(x, batch.inputs, batch.targets.tolist(), strict=True):
        assert torch.equal(rotated, torch.rot90(image, k, dims=(1, 2)))


def test_same_seed_same_batch_other_seed_other_labels():
    task, x = _task(), torch.rand(32, 3, 32, 32)
    a = task.make_batch(x, torch.Generator().manual_seed(5))
    b = task.make_batch(x, torch.Generator().manual_seed(5))
    c = task.make_batch(x, torch.Generator().manual_seed(6))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.targets, c.targets)


def test_logits_are_four_way_and_non_square_images_are_refused():
    torch.manual_seed(0)
    backbone = create("preact_tiny")
    task = create_task("rotation", backbone)
    batch = task.make_batch(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0))
    assert task.logits(backbone, batch.inputs, batch).shape == (4, 4)
    with pytest.raises(ValueError, match="square"):
        task.make_batch(torch.rand(4, 3, 32, 16), torch.Generator())


def test_schedule_defaults_are_the_papers():
    task = _task()
    assert (task.name, task.default_lr_max, task.default_lr_min) == ("rotation", 0.1, 1e-6)
    assert task.config() == {}
