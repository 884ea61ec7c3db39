"""Selfie: the masking order, candidate bookkeeping, logits layout and the single softmax."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robench.models import create
from robench.pretext import PretextBatch, create_task

SMALL = {"num_layers": 1, "num_heads": 4, "ffn_dim": 64}
TILE = 8


def _setup(n: int = 8):
    torch.manual_seed(0)
    backbone = create("preact_tiny").eval()
    task = create_task("selfie", backbone, **SMALL).eval()
    x = torch.rand(n, 3, 32, 32)
    return backbone, task, x, task.make_batch(x, torch.Generator().manual_seed(1))


def _patch(t: int) -> tuple[slice, slice]:
    r, c = divmod(t, 4)
    return slice(r * TILE, (r + 1) * TILE), slice(c * TILE, (c + 1) * TILE)


def test_order_masks_four_and_shows_twelve():
    _, _, x, batch = _setup()
    order = batch.extra["order"]
    assert order.dtype == torch.int64 and order.shape == (16,)
    assert torch.equal(order.sort().values, torch.arange(16))
    assert torch.equal(batch.inputs, x)  # the adversary perturbs the whole image


def test_targets_point_at_each_positions_true_patch():
    _, _, _, batch = _setup(32)
    candidates, targets = batch.extra["candidates"], batch.targets
    assert candidates.shape == targets.shape == (32, 4) and targets.dtype == torch.int64
    assert torch.equal(candidates.sort(1).values, torch.arange(4).expand(32, 4))
    # Candidate targets[n, i] of example n is the patch at masked position i.
    assert torch.equal(candidates.gather(1, targets), torch.arange(4).expand(32, 4))
    assert len({tuple(row) for row in candidates.tolist()}) > 1  # shuffled per example


def test_logits_layout_follows_the_candidates():
    backbone, task, _, batch = _setup()
    logits = task.logits(backbone, batch.inputs, batch)
    assert logits.shape == (8, 4, 4)
    # Reordering the candidates reorders the candidate axis (dim 1) and nothing else.
    perm = torch.tensor([2, 0, 3, 1])
    extra = dict(batch.extra, candidates=batch.extra["candidates"][:, perm])
    moved = task.logits(backbone, batch.inputs, PretextBatch(batch.inputs, batch.targets, extra))
    torch.testing.assert_close(moved, logits[:, perm])


def test_loss_is_one_softmax_cross_entropy_summed_over_positions():
    backbone, task, _, batch = _setup()
    with torch.no_grad():
        logits = task.logits(backbone, batch.inputs, batch) * 20  # confident enough to differ
    by_hand = -logits.log_softmax(1).gather(1, batch.targets.unsqueeze(1)).squeeze(1)
    expected = by_hand.sum(1).mean()
    torch.testing.assert_close(task.loss(logits, batch.targets), expected)
    double = F.cross_entropy(logits.softmax(1), batch.targets, reduction="none").sum(1).mean()
    assert abs(float(double) - float(expected)) > 0.1


def _repaint(x: torch.Tensor, position: int) -> torch.Tensor:
    changed = x.clone()
    rows, cols = _patch(position)
    changed[:, :, rows, cols] = torch.rand(len(x), 3, TILE, TILE)
    return changed


def test_a_masked_patch_moves_only_its_own_candidate_row():
    backbone, task, x, batch = _setup()
    base = task.logits(backbone, x, batch)
    masked = batch.extra["order"][0].item()  # masked slot 0; the visible set is unchanged
    change = (task.logits(backbone, _repaint(x, masked), batch) - base).abs().amax(2)
    is_that_patch = batch.extra["candidates"] == 0  # (N, 4): which candidate shows slot 0
    assert (change[is_that_patch] > 1e-4).all()
    assert (change[~is_that_patch] < 1e-5).all()  # eval mode: patches are embedded apart


def test_a_visible_patch_moves_every_logit_through_the_summary():
    backbone, task, x, batch = _setup()
    visible = batch.extra["order"][10].item()
    change = task.logits(backbone, _repaint(x, visible), batch) - task.logits(backbone, x, batch)
    assert (change.abs().amax((1, 2)) > 1e-4).all()


def test_config_round_trip_and_bad_head_count():
    torch.manual_seed(0)
    backbone = create("preact_tiny")
    task = create_task("selfie", backbone, **SMALL)
    assert task.config() == {**SMALL, "dropout": 0.1}
    assert (task.default_lr_max, task.default_lr_min) == (0.025, 1e-6)
    rebuilt = create_task("selfie", backbone, **task.config())
    assert rebuilt.state_dict().keys() == task.state_dict().keys()
    with pytest.raises(ValueError, match="divide"):
        create_task("selfie", backbone, num_layers=1, num_heads=3, ffn_dim=64)
    with pytest.raises(ValueError, match="divisible"):
        task.make_batch(torch.rand(2, 3, 30, 30), torch.Generator())
