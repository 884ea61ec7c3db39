"""What a self-supervised pretext task is, in robench: a head and a way to pose the problem.

A task owns (1) how it turns a clean, augmented batch into its own inputs and targets
(`make_batch`), (2) its task-specific parameters theta_pc (`self` is an nn.Module holding
them), and (3) a pure loss function. The shared trunk theta_p is NOT owned by the task: it is
passed in, so pretraining, ensembles and fine-tuning all share one trunk object.

Adversarial pretraining perturbs `PretextBatch.inputs`, always images in [0, 1]: the rotated
image (Rotation), the shuffled image (Jigsaw), or the whole image (Selfie). `bind(backbone,
batch)` returns a module mapping those inputs to logits in cross-entropy layout (N, C) or
(N, C, d), so the same PGD that attacks classifiers attacks any pretext task with
`cross_entropy(logits, batch.targets)`.

`pose(x, batch)` re-applies a batch's transform (its rotations, its shuffles) to other images
of the same shape. Ensemble pretraining needs it: there every task's perturbation lives in the
space of the original image, so that the tasks' input gradients can be compared column by
column (rotation and shuffling are pixel permutations, so the threat model is the same).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from robench.models import Classifier


@dataclass
class PretextBatch:
    inputs: torch.Tensor  # images in [0, 1], (N, 3, H, W): what the adversary perturbs
    targets: torch.Tensor  # int64, (N,) or (N, d): cross-entropy targets
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # e.g. Selfie's patch order


class PretextTask(nn.Module, ABC):
    """Base class; subclasses register with `@PRETEXTS.register(name)`."""

    name: ClassVar[str] = ""
    # The paper's cosine schedule for this task's pretraining (max -> min learning rate).
    default_lr_max: ClassVar[float] = 0.1
    default_lr_min: ClassVar[float] = 1e-6

    @abstractmethod
    def make_batch(self, x: torch.Tensor, generator: torch.Generator) -> PretextBatch:
        """Pose the task on a clean batch x in [0, 1] (already augmented)."""

    @abstractmethod
    def pose(self, x: torch.Tensor, batch: PretextBatch) -> torch.Tensor:
        """Apply `batch`'s transform to images x shaped like the clean batch; differentiable.

        pose(x, make_batch(x, g)) equals make_batch(x, g).inputs.
        """

    @abstractmethod
    def logits(
        self, backbone: Classifier, inputs: torch.Tensor, batch: PretextBatch
    ) -> torch.Tensor:
        """Task logits for (possibly perturbed) inputs, in cross-entropy layout."""

    @staticmethod
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean over examples of the cross-entropy (summed over positions for (N, C, d))."""
        return PretextTask.example_losses(logits, targets).mean()

    @staticmethod
    def example_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N,) float32 cross-entropy per example (summed over positions for (N, C, d)).

        Attacks ascend the sum of these, so a step does not depend on the batch size, and the
        input gradient of example n is that of its own loss (with BatchNorm in eval mode).
        """
        per_position = F.cross_entropy(logits.float(), targets, reduction="none")
        return per_position.reshape(len(targets), -1).sum(1)

    def bind(self, backbone: Classifier, batch: PretextBatch) -> nn.Module:
        """A module inputs -> logits for this batch: what an attack needs to perturb inputs."""
        return _Bound(self, backbone, batch)

    def config(self) -> dict[str, Any]:
        """Constructor arguments, saved with checkpoints so the task can be rebuilt."""
        return {}


class _Bound(nn.Module):
    def __init__(self, task: PretextTask, backbone: Classifier, batch: PretextBatch) -> None:
        super().__init__()
        self.task = task
        self.backbone = backbone
        self.batch = batch

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.task.logits(self.backbone, inputs, self.batch)
