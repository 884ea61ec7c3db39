"""The plain way: what the authors' code (and most CIFAR adversarial-training code) does.

A torchvision-style Dataset that hands out one PIL image at a time, RandomCrop(32, padding=4)
+ RandomHorizontalFlip + ToTensor in DataLoader workers, a host-to-device copy per batch,
float32 throughout, a hand-written PGD loop, the model left in train mode while the training
attack runs (BatchNorm uses, and updates its statistics from, the adversarial batches), and
`.item()` after every step for the running loss and accuracy. The torchattacks variant swaps
only the attack for torchattacks.PGD (which puts the model in eval mode while attacking).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchattacks
from PIL import Image
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from torchvision import transforms

from benchmarks.common import (
    AT_STEPS,
    EPOCH_IMAGES,
    EPS,
    EVAL_STEPS,
    LR,
    MOMENTUM,
    STEP,
    TEST_IMAGES,
    WEIGHT_DECAY,
    Measurement,
    Settings,
    clock,
)
from robench.data import ArrayDataset
from robench.models import create

TRAIN_TRANSFORM = transforms.Compose(
    [transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(), transforms.ToTensor()]
)
TEST_TRANSFORM = transforms.ToTensor()

Attack = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ArrayImages(Dataset):
    """What torchvision.datasets.CIFAR10 does: a PIL image per item, then the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def pgd_attack(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, eps: float = EPS
) -> torch.Tensor:
    """L-inf PGD with a random start, as usually hand-written; the model's mode is untouched."""
    x_adv = x.detach() + torch.zeros_like(x).uniform_(-eps, eps)
    x_adv = torch.clamp(x_adv, 0.0, 1.0)
    for _ in range(steps):
        x_adv.requires_grad_()
        with torch.enable_grad():
            loss = F.cross_entropy(model(x_adv), y)
        grad = torch.autograd.grad(loss, [x_adv])[0]
        x_adv = x_adv.detach() + STEP * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - eps), x + eps)
        x_adv = torch.clamp(x_adv, 0.0, 1.0)
    return x_adv


def make_attack(implementation: str, model: nn.Module, steps: int) -> Attack:
    if implementation == "torchattacks":
        return torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=steps, random_start=True)
    return lambda x, y: pgd_attack(model, x, y, steps)


def reference_train(
    settings: Settings,
    name: str,
    train: ArrayDataset,
    num_classes: int,
    state: dict,
    implementation: str,
    adversarial: bool,
) -> Measurement:
    device = settings.device
    model = create(name, num_classes=num_classes).to(device)
    model.load_state_dict(state)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY
    )
    attack = make_attack(implementation, model, AT_STEPS) if adversarial else None
    stats = {"loss": 0.0, "correct": 0, "total": 0}

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        if attack is not None:
            x = attack(x, y)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        stats["loss"] += loss.item()
        stats["correct"] += logits.argmax(1).eq(y).sum().item()
        stats["total"] += y.size(0)

    n = min(len(train), settings.warmup_steps * settings.batch_size + settings.train_images)
    data = ArrayImages(train.images[:n], train.labels[:n], TRAIN_TRANSFORM)
    model.train()
    images, seconds = _timed_loop(_loader(data, settings, shuffle=True), settings, step)
    note = "BN train mode during the attack; " if attack is not None else ""
    if implementation == "torchattacks":
        note = "torchattacks.PGD (BN eval during the attack); "
    return Measurement(
        name,
        "pgd10_at" if adversarial else "standard",
        implementation,
        images=images,
        seconds=seconds,
        target_images=EPOCH_IMAGES,
        note=f"{note}fp32 NCHW; DataLoader {settings.workers} workers",
    )


def reference_eval(
    settings: Settings,
    name: str,
    test: ArrayDataset,
    num_classes: int,
    state: dict,
    implementation: str,
    note: str,
) -> Measurement:
    device = settings.device
    model = create(name, num_classes=num_classes).to(device)
    model.load_state_dict(state)
    model.eval()
    attack = make_attack(implementation, model, EVAL_STEPS)
    counts = {"clean": 0, "robust": 0, "total": 0}

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.no_grad():
            counts["clean"] += model(x).argmax(1).eq(y).sum().item()
        x_adv = attack(x, y)
        with torch.no_grad():
            counts["robust"] += model(x_adv).argmax(1).eq(y).sum().item()
        counts["total"] += y.size(0)

    # warm-up batches first, then exactly the images the other implementations score
    warm = min(len(test), settings.warmup_steps * settings.batch_size)
    n = settings.eval_images
    data = ConcatDataset(
        [
            ArrayImages(test.images[:warm], test.labels[:warm], TEST_TRANSFORM),
            ArrayImages(test.images[:n], test.labels[:n], TEST_TRANSFORM),
        ]
    )
    images, seconds = _timed_loop(_loader(data, settings, shuffle=False), settings, step, counts)
    total = max(counts["total"], 1)
    return Measurement(
        name,
        "pgd20_eval",
        implementation,
        images=images,
        seconds=seconds,
        target_images=TEST_IMAGES,
        clean_acc=100 * counts["clean"] / total,
        robust_acc=100 * counts["robust"] / total,
        note=f"{note}; fp32 NCHW; DataLoader {settings.workers} workers",
    )


def _loader(data: Dataset, settings: Settings, shuffle: bool) -> DataLoader:
    return DataLoader(
        data,
        batch_size=settings.batch_size,
        shuffle=shuffle,
        num_workers=settings.workers,
        pin_memory=settings.device.type == "cuda",
        generator=torch.Generator().manual_seed(settings.seed),
    )


def _timed_loop(
    loader: DataLoader,
    settings: Settings,
    step: Callable[[torch.Tensor, torch.Tensor], None],
    counts: dict | None = None,
) -> tuple[int, float]:
    """Run `step` on every batch; time all but the first `warmup_steps` (worker start-up and
    first-call costs stay outside, as they would over a whole epoch). Counters in `counts`
    restart with the clock."""
    images, start = 0, None
    for index, (x, y) in enumerate(loader):
        if index == settings.warmup_steps:
            start, images = clock(settings.device), 0
            if counts is not None:
                counts.update(dict.fromkeys(counts, 0))
        step(x.to(settings.device), y.to(settings.device))
        images += len(y)
    if start is None:
        raise ValueError(f"no batches left to time after {settings.warmup_steps} warm-up steps")
    return images, clock(settings.device) - start
