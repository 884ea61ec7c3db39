"""CIFAR ResNet-20 ("v1") with the parameter names of ../shared/external's checkpoints.

A model nobody on this team trained, described in words by shared/external/README.md: it lets
the attack tests run on real, well-trained models (one standard, one adversarially trained)
instead of a toy trained inside the test session.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv_a = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn_a = nn.BatchNorm2d(cout)
        self.conv_b = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn_b = nn.BatchNorm2d(cout)
        self.stride, self.extra = stride, cout - cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn_b(self.conv_b(F.relu(self.bn_a(self.conv_a(x)))))
        skip = x
        if self.stride != 1 or self.extra:
            # Weightless shortcut: every second pixel, then zero channels appended.
            skip = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra))
        return F.relu(out + skip)


class ResNet20(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv_1_3x3 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn_1 = nn.BatchNorm2d(16)
        widths, cin = (16, 32, 64), 16
        for i, width in enumerate(widths, 1):
            blocks = [
                BasicBlock(cin if j == 0 else width, width, 1 if (i == 1 or j) else 2)
                for j in range(3)
            ]
            setattr(self, f"stage_{i}", nn.Sequential(*blocks))
            cin = width
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn_1(self.conv_1_3x3(x)))
        out = self.stage_3(self.stage_2(self.stage_1(out)))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(out, 1), 1))


def resnet20() -> ResNet20:
    return ResNet20()
