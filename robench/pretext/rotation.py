"""Rotation prediction (Gidaris et al. 2018): which of 0, 90, 180, 270 degrees was applied?

The paper's setting (PROTOCOL.md): every image gets one rotation, the four labels are balanced
within each batch (so the task never learns a label prior), the batch is flip/crop-augmented
before it is rotated, and the adversary perturbs the rotated image. The task's own parameters
theta_pc are a fresh 4-way head: its own stage-4 copy plus classifier on top of the trunk.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from robench.models import Classifier, create
from robench.pretext.base import PretextBatch, PretextTask
from robench.pretext.registry import PRETEXTS

NUM_ROTATIONS = 4


def balanced_labels(n: int, classes: int, generator: torch.Generator) -> torch.Tensor:
    """n labels with every class count within 1 of n / classes, in random order."""
    device = generator.device
    order = torch.randperm(n, generator=generator, device=device)
    return (torch.arange(n, device=device) % classes)[order]


def rotate(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Image i rotated by k[i] * 90 degrees (torch.rot90 on dims (2, 3)).

    All four rotations of the batch are computed and each image picks its own: four tensor
    ops instead of one per image, and no host sync (unlike boolean-mask grouping on CUDA).
    """
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"rotation needs square images, got {tuple(x.shape[-2:])}")
    rotated = torch.stack([torch.rot90(x, r, dims=(2, 3)) for r in range(NUM_ROTATIONS)])
    return rotated[k, torch.arange(len(x), device=x.device)]


@PRETEXTS.register("rotation")
class Rotation(PretextTask):
    """4-way rotation classification on the full backbone (trunk + this task's head)."""

    name: ClassVar[str] = "rotation"
    default_lr_max: ClassVar[float] = 0.1
    default_lr_min: ClassVar[float] = 1e-6

    def __init__(self, backbone: Classifier) -> None:
        super().__init__()
        # Only the head is kept: the trunk is shared and passed to `logits` on every call, so
        # it must not become a submodule (it would be saved and optimised twice).
        self.head = create(backbone.arch, num_classes=NUM_ROTATIONS).head

    def make_batch(self, x: torch.Tensor, generator: torch.Generator) -> PretextBatch:
        """Rotate each (already augmented) image by a balanced random multiple of 90 degrees."""
        k = balanced_labels(len(x), NUM_ROTATIONS, generator).to(x.device)
        return PretextBatch(inputs=rotate(x, k), targets=k)

    def pose(self, x: torch.Tensor, batch: PretextBatch) -> torch.Tensor:
        """x rotated by the batch's rotations (its targets)."""
        return rotate(x, batch.targets)

    def logits(
        self, backbone: Classifier, inputs: torch.Tensor, batch: PretextBatch
    ) -> torch.Tensor:
        """(N, 4) rotation logits for (possibly perturbed) rotated images."""
        return self.head(backbone.features(inputs))
