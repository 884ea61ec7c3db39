"""The one-shot baseline of Figure 3 (Hendrycks et al. 2019): AT with a rotation auxiliary head.

Every image of a batch is presented in its four rotations. The classifier's loss is the
cross-entropy of the upright copies; a rotation head (a linear layer on the classifier's
pooled features, as in Hendrycks et al.) predicts the rotation of all four copies; the loss is
CE(class) + weight * CE(rotation) (weight 0.5), and PGD maximises that same joint loss, each
copy inside its own eps-ball around its rotated clean image. The random start goes into a new
tensor: Hendrycks et al.'s code added it to the clean batch in place, so the projection was
around an already-perturbed image and the effective budget doubled.

The head lives on the classifier as `rotation_head`, so checkpoints hold it and a checkpoint's
`auxiliary` metadata tells the loader to attach it before the key-by-key check. The classifier's
own forward ignores it: evaluation attacks the classifier alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from robench.attacks.pgd import PGD
from robench.models import ROTATION_HEAD, Classifier
from robench.pretext.rotation import NUM_ROTATIONS
from robench.runtime import Runtime
from robench.train.loop import StepOutput


def four_rotations(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Copies rotated by 0, 90, 180, 270 degrees in blocks of N, (4N, ...); their labels."""
    rotated = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(NUM_ROTATIONS)])
    labels = torch.arange(NUM_ROTATIONS, device=x.device).repeat_interleave(len(x))
    return rotated, labels


class JointOutputs(nn.Module):
    """Images -> class logits and rotation logits side by side, (M, classes + 4)."""

    def __init__(self, model: Classifier) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.model.head.pooled(self.model.features(x))
        rotation_head = getattr(self.model, ROTATION_HEAD)
        return torch.cat([self.model.head.fc(pooled), rotation_head(pooled)], 1)


def joint_loss(outputs: torch.Tensor, targets: torch.Tensor, weight: float) -> torch.Tensor:
    """CE(class of the upright copies) + weight * CE(rotation of all copies), both means.

    `targets` is (4N, 2): class label and rotation label; rows are in `four_rotations` order,
    so the first quarter is upright (slicing, not a boolean mask: no host sync).
    """
    n = len(outputs) // NUM_ROTATIONS
    classes = outputs.shape[1] - NUM_ROTATIONS
    outputs = outputs.float()
    class_loss = F.cross_entropy(outputs[:n, :classes], targets[:n, 0])
    rotation_loss = F.cross_entropy(outputs[:, classes:], targets[:, 1])
    return class_loss + weight * rotation_loss


class RotationAuxiliaryObjective:
    """One training step's loss for the baseline, with its joint PGD if the run is adversarial."""

    def __init__(
        self, model: Classifier, attack: PGD | None, weight: float, runtime: Runtime
    ) -> None:
        self.joint = JointOutputs(model)
        self.weight = weight
        self.runtime = runtime
        self.attack = None if attack is None else attack.with_objective(self._objective)

    def _objective(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return joint_loss(outputs, targets, self.weight)

    def loss(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint loss of a clean batch (x, y), and the class logits of its upright copies."""
        inputs, rotations = four_rotations(x)
        targets = torch.stack([y.repeat(NUM_ROTATIONS), rotations], 1)
        if self.attack is not None:
            inputs = self.attack.perturb(self.joint, inputs, targets, generator)
        with self.runtime.autocast():
            outputs = self.joint(inputs)
        classes = outputs.shape[1] - NUM_ROTATIONS
        return joint_loss(outputs, targets, self.weight), outputs[: len(x), :classes]


class RotationAuxStep:
    """The baseline's training step: the joint loss (attacked jointly), one optimiser step."""

    def __init__(
        self, objective: RotationAuxiliaryObjective, optimizer: torch.optim.Optimizer
    ) -> None:
        self.objective = objective
        self.optimizer = optimizer

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> StepOutput:
        loss, logits = self.objective.loss(x, y, generator)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss, (logits.argmax(1) == y).sum(), len(y), examples=len(y))
