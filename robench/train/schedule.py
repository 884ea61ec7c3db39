"""The paper's optimiser and schedules (step for fine-tuning, cosine for pretraining).

The learning rate is computed from the epoch number rather than kept in a scheduler object,
so a resumed run needs no scheduler state to continue on exactly the same schedule.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from robench.config import Protocol


def lr_at_epoch(protocol: Protocol, epoch: int) -> float:
    """Learning rate for 1-based `epoch`: x lr_gamma after each milestone epoch (30, 50 of 100)."""
    passed = sum(1 for m in protocol.milestone_epochs() if epoch > m)
    return protocol.lr * protocol.lr_gamma**passed


def cosine_lr(lr_max: float, lr_min: float, epoch: int, epochs: int) -> float:
    """Cosine annealing from lr_max (epoch 1) towards lr_min (reached after the last epoch)."""
    progress = (epoch - 1) / epochs
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def make_optimizer(
    params: list[nn.Parameter],
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    device: torch.device,
) -> torch.optim.SGD:
    """SGD over the parameters that train (a frozen trunk's are left out, so no decay either)."""
    return torch.optim.SGD(
        [p for p in params if p.requires_grad],
        lr=lr,
        momentum=momentum,
        weight_decay=weight_decay,
        fused=device.type == "cuda",  # one kernel for the update on GPU; foreach on CPU
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
