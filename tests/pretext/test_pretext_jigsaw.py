"""Jigsaw: a fixed, well-spread permutation set saved with the weights; exact tile shuffles."""

from __future__ import annotations

import itertools
import time

import pytest
import torch

from robench.models import create
from robench.pretext import create_task
from robench.pretext.jigsaw import Jigsaw, hamming_spread_permutations

TILE = 8


def _task(seed: int = 0) -> Jigsaw:
    torch.manual_seed(0)
    return create_task("jigsaw", create("preact_tiny"), seed=seed)


def _tile(image: torch.Tensor, t: int) -> torch.Tensor:
    """Tile t (row-major on the 4x4 grid) of one (C, 32, 32) image, by plain slicing."""
    r, c = divmod(t, 4)
    return image[:, r * TILE : (r + 1) * TILE, c * TILE : (c + 1) * TILE]


def test_thirty_distinct_non_identity_permutations_far_apart():
    perms = _task().permutations
    assert perms.dtype == torch.int64 and perms.shape == (30, 16)
    assert torch.equal(perms.sort(1).values, torch.arange(16).expand(30, 16))
    table = torch.cat([torch.arange(16)[None], perms])  # class 0 = identity
    distances = [int((a != b).sum()) for a, b in itertools.combinations(table, 2)]
    # Two random permutations of 16 share a tile with probability ~0.63; the max-min pick keeps
    # every pair (identity included) at least 14 of 16 tiles apart (seeds 0-3 all reach 14).
    assert min(distances) >= 14


def test_permutation_set_is_a_function_of_the_seed_and_fast():
    assert torch.equal(_task(0).permutations, _task(0).permutations)
    assert not torch.equal(_task(0).permutations, _task(1).permutations)
    start = time.perf_counter()
    hamming_spread_permutations(30, 16, seed=7)
    assert time.perf_counter() - start < 1.0


def test_state_dict_carries_the_permutation_set():
    saved, other = _task(0), _task(1)
    assert "permutations" in saved.state_dict()
    other.load_state_dict(saved.state_dict())
    assert torch.equal(other.permutations, saved.permutations)


def test_class_zero_is_favoured_and_the_rest_uniform():
    task, n = _task(), 40_000
    batch = task.make_batch(torch.zeros(n, 3, 4, 4), torch.Generator().manual_seed(0))
    freq = torch.bincount(batch.targets, minlength=31).double() / n
    assert abs(freq[0] - (0.1 + 0.9 / 31)) < 0.01
    assert (freq[1:] - 0.9 / 31).abs().max() < 0.006


def test_inputs_are_the_original_tiles_moved_as_the_label_says():
    task = _task()
    x = torch.rand(64, 3, 32, 32)
    x_before = x.clone()
    batch = task.make_batch(x, torch.Generator().manual_seed(3))
    assert torch.equal(x, x_before)
    labels = batch.targets.tolist()
    assert 0 in labels and any(label > 0 for label in labels)
    for image, shuffled, label in zip(x, batch.inputs, labels, strict=True):
        if label == 0:
            assert torch.equal(shuffled, image)
            continue
        perm = task.permutations[label - 1].tolist()
        for t in range(16):
            assert torch.equal(_tile(shuffled, t), _tile(image, perm[t]))


def test_logits_shape_config_and_bad_images():
    torch.manual_seed(0)
    backbone = create("preact_tiny")
    task = create_task("jigsaw", backbone, seed=4)
    batch = task.make_batch(torch.rand(4, 3, 32, 32), torch.Generator().manual_seed(0))
    assert task.logits(backbone, batch.inputs, batch).shape == (4, 31)
    assert task.config() == {"num_permutations": 30, "seed": 4}
    assert (task.default_lr_max, task.default_lr_min) == (0.1, 1e-6)
    for shape in [(2, 3, 30, 30), (2, 3, 32, 16)]:
        with pytest.raises(ValueError, match="divisible"):
            task.make_batch(torch.rand(shape), torch.Generator())
