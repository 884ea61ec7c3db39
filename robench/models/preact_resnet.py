"""Pre-activation ResNets for 32x32 inputs (He et al. 2016, "Identity Mappings").

ResNet-50v2 is the paper's backbone (PROTOCOL.md): 3x3 stride-1 stem (3 -> 64), bottleneck
stages [3, 4, 6, 3] with expansion 4 and strides 1, 2, 2, 2. In a pre-activation block BN-ReLU
comes before each conv, and a projection shortcut (1x1 conv) reads the pre-activated input.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from robench.models.classifier import Classifier, ClassifierHead
from robench.models.registry import MODELS


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class PreActBasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, cout)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class PreActBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        cout = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.shortcut = (
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False)
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = torch.relu(self.bn1(x))
        skip = self.shortcut(pre) if self.shortcut is not None else x
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.bn2(out)))
        out = self.conv3(torch.relu(self.bn3(out)))
        return out + skip


Block = type[PreActBasicBlock] | type[PreActBottleneck]


def _stage(block: Block, cin: int, planes: int, blocks: int, stride: int) -> nn.Sequential:
    layers = []
    for i in range(blocks):
        layers.append(block(cin, planes, stride if i == 0 else 1))
        cin = planes * block.expansion
    return nn.Sequential(*layers)


def preact_resnet(
    block: Block,
    depths: tuple[int, int, int, int],
    widths: tuple[int, int, int, int],
    num_classes: int,
    stem_width: int | None = None,
) -> Classifier:
    """Assemble trunk (stem + stages 1-3) and head (stage 4 + classifier)."""
    stem_width = stem_width or widths[0]
    stages = []
    cin = stem_width
    for i, (depth, width) in enumerate(zip(depths, widths, strict=True)):
        stages.append(_stage(block, cin, width, depth, 1 if i == 0 else 2))
        cin = width * block.expansion
    trunk_channels = widths[2] * block.expansion
    trunk = nn.Sequential(
        OrderedDict(
            stem=_conv3x3(3, stem_width),
            stage1=stages[0],
            stage2=stages[1],
            stage3=stages[2],
        )
    )
    head = ClassifierHead(stages[3], cin, num_classes)
    model = Classifier(trunk, head, trunk_channels)
    _init_weights(model)
    return model


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


@MODELS.register("preact_resnet50v2")
def preact_resnet50v2(num_classes: int = 10) -> Classifier:
    """The paper's backbone: 23.5M parameters, trunk output 1024 x 8 x 8."""
    return preact_resnet(PreActBottleneck, (3, 4, 6, 3), (64, 128, 256, 512), num_classes)


@MODELS.register("preact_resnet18")
def preact_resnet18(num_classes: int = 10) -> Classifier:
    """Reduced scale for one GPU: 11.2M parameters, trunk output 256 x 8 x 8."""
    return preact_resnet(PreActBasicBlock, (2, 2, 2, 2), (64, 128, 256, 512), num_classes)


@MODELS.register("preact_tiny")
def preact_tiny(num_classes: int = 10) -> Classifier:
    """A PreAct net small enough for tests and CPU runs (one block per stage, width 16-128)."""
    return preact_resnet(PreActBasicBlock, (1, 1, 1, 1), (16, 32, 64, 128), num_classes)


@MODELS.register("preact_small")
def preact_small(num_classes: int = 10) -> Classifier:
    """Between tiny and ResNet-18 (width 32-256): the CPU quickstart's model."""
    return preact_resnet(PreActBasicBlock, (1, 1, 1, 1), (32, 64, 128, 256), num_classes)
