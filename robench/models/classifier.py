"""The shape every robench model shares: normalise -> trunk -> head.

The split is the paper's: the trunk (theta_p = stem + stages 1-3) is what self-supervised
pretraining learns and fine-tuning inherits; the head (stage 4 + classifier) is always fresh.
Normalisation is a fixed layer of the model so that attacks work on [0, 1] inputs and never
need to know a data set's statistics.
"""

from __future__ import annotations

import torch
from torch import nn

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


class Normalize(nn.Module):
    """(x - mean) / std per channel. The statistics are architecture constants, not weights."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ClassifierHead(nn.Module):
    """Stage 4, the final pre-activation BN-ReLU, global average pooling and a linear layer.

    Pre-activation nets need the last BN-ReLU before pooling; it belongs to the head because
    its statistics describe stage 4's output, which is re-learnt when a head is replaced.
    """

    def __init__(self, stage4: nn.Module, channels: int, num_classes: int) -> None:
        super().__init__()
        self.stage4 = stage4
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        """The penultimate vector the linear layer reads (what auxiliary heads share)."""
        out = torch.relu(self.bn(self.stage4(features)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pooled(features))


class Classifier(nn.Module):
    """An image classifier on [0, 1] inputs with a transferable trunk."""

    arch: str = ""

    def __init__(
        self,
        trunk: nn.Module,
        head: ClassifierHead,
        trunk_channels: int,
        mean: tuple[float, ...] = CIFAR10_MEAN,
        std: tuple[float, ...] = CIFAR10_STD,
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.trunk = trunk
        self.head = head
        self.trunk_channels = trunk_channels

    @property
    def num_classes(self) -> int:
        return self.head.fc.out_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Trunk output (theta_p) for [0, 1] inputs: what pretext heads and transfer build on."""
        return self.trunk(self.normalize(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


ROTATION_HEAD = "rotation_head"  # the attribute (and checkpoint key prefix) of the head below
ROTATIONS = 4  # 0, 90, 180, 270 degrees


def attach_rotation_head(model: Classifier) -> Classifier:
    """Give `model` a 4-way rotation head on its pooled features (in place; returns it).

    Hendrycks et al.'s auxiliary head, trained by the Figure 3 baseline
    (robench/train/rotation_aux.py). It is part of the model so checkpoints hold it; the
    classifier's own forward ignores it, so evaluation attacks the classifier alone.
    """
    head = nn.Linear(model.head.fc.in_features, ROTATIONS)
    model.add_module(ROTATION_HEAD, head.to(model.head.fc.weight.device))
    return model
