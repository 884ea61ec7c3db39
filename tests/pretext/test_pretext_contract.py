"""What every registered pretext task promises, for each name in `PRETEXTS`.

On a random tiny backbone: `make_batch` gives int64 targets inside the task's classes
(0 <= target < classes, where the classes are the logits' dim 1: cross-entropy layout), its
loss is finite, and the batch is a function of the generator's seed (same seed, same batch;
another seed, another batch). A newly registered task fails here until EXAMPLE_TASKS says how
to build a small one and how many classes it has.
"""

from __future__ import annotations

import pytest
import torch

from robench.models import create
from robench.pretext import PRETEXTS, PretextBatch, create_task

# name -> (small constructor options, number of classes)
EXAMPLE_TASKS: dict[str, tuple[dict, int]] = {
    "rotation": ({}, 4),  # 0, 90, 180, 270 degrees
    "jigsaw": ({}, 31),  # 30 permutations + unshuffled
    "selfie": ({"num_layers": 1, "num_heads": 4, "ffn_dim": 64}, 4),  # 4 masked candidates
}
N = 16


def _setup(name: str):
    if name not in EXAMPLE_TASKS:
        pytest.fail(
            f"pretext task {name!r} is registered in PRETEXTS but has no entry in "
            f"EXAMPLE_TASKS ({__file__}): add its small options and number of classes"
        )
    options, classes = EXAMPLE_TASKS[name]
    torch.manual_seed(0)
    backbone = create("preact_tiny")
    return backbone, create_task(name, backbone, **options), classes


def _images() -> torch.Tensor:
    return torch.rand(N, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _same(a: PretextBatch, b: PretextBatch) -> bool:
    return (
        torch.equal(a.inputs, b.inputs)
        and torch.equal(a.targets, b.targets)
        and a.extra.keys() == b.extra.keys()
        and all(torch.equal(a.extra[k], b.extra[k]) for k in a.extra)
    )


def test_example_tasks_name_only_registered_tasks():
    stale = sorted(set(EXAMPLE_TASKS) - set(PRETEXTS.names()))
    assert not stale, f"EXAMPLE_TASKS lists tasks that are not registered: {stale}"


@pytest.mark.parametrize("name", PRETEXTS.names())
def test_targets_are_classes_of_the_task(name):
    backbone, task, classes = _setup(name)
    x = _images()
    batch = task.make_batch(x, torch.Generator().manual_seed(0))
    assert batch.inputs.shape == x.shape
    assert batch.targets.dtype == torch.int64 and len(batch.targets) == N
    assert int(batch.targets.min()) >= 0 and int(batch.targets.max()) < classes
    logits = task.logits(backbone, batch.inputs, batch)
    # cross-entropy layout: (N, classes) or (N, classes, d) for targets (N,) or (N, d)
    assert logits.shape[:2] == (N, classes)
    assert logits.shape[2:] == batch.targets.shape[1:]


@pytest.mark.parametrize("name", PRETEXTS.names())
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_loss_on_a_random_backbone_is_finite(name, train):
    backbone, task, _ = _setup(name)
    backbone.train(train), task.train(train)
    batch = task.make_batch(_images(), torch.Generator().manual_seed(0))
    loss = task.loss(task.logits(backbone, batch.inputs, batch), batch.targets)
    assert loss.dim() == 0 and loss.dtype == torch.float32
    assert torch.isfinite(loss) and float(loss.detach()) > 0


@pytest.mark.parametrize("name", PRETEXTS.names())
def test_batches_are_a_function_of_the_generator_seed(name):
    _, task, _ = _setup(name)
    x = _images()
    x_before = x.clone()
    a = task.make_batch(x, torch.Generator().manual_seed(5))
    b = task.make_batch(x, torch.Generator().manual_seed(5))
    c = task.make_batch(x, torch.Generator().manual_seed(6))
    assert _same(a, b)
    assert not _same(a, c)
    assert torch.equal(x, x_before)
