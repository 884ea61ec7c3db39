"""The paper's fine-tuning optimiser and step schedule, as pure functions of the protocol.

The learning rate is computed from the epoch number rather than kept in a scheduler object,
so a resumed run needs no scheduler state to continue on exactly the same schedule.
"""

from __future__ import annotations

import torch
from torch import nn

from robench.config import Protocol


def lr_at_epoch(protocol: Protocol, epoch: int) -> float:
    """Learning rate for 1-based `epoch`: x lr_gamma after each milestone epoch (30, 50 of 100)."""
    passed = sum(1 for m in protocol.milestone_epochs() if epoch > m)
    return protocol.lr * protocol.lr_gamma**passed


def make_optimizer(model: nn.Module, protocol: Protocol, device: torch.device) -> torch.optim.SGD:
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(
        params,
        lr=protocol.lr,
        momentum=protocol.momentum,
        weight_decay=protocol.weight_decay,
        fused=device.type == "cuda",  # one kernel for the update on GPU; foreach on CPU
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
