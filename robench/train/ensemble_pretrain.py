"""One step of ensemble pretraining (paper Sec. 3.3, eq. 2-4; Table 5: AP+SE and AP+DPE).

Every task of the ensemble poses its problem on the same clean, augmented batch x. Task i is
attacked through its own perturbation delta_i of x itself (not of its rotated or shuffled
input): task i sees pose_i(x + delta_i). Rotation and shuffling permute pixels, so the
eps-ball is the single-task one; what changes is that every delta_i, and so every input
gradient g_i, lives in the space of x, where the columns of G are comparable at all.

Inner maximisation (PGD-10, one random start per task, sign steps):
    max_{delta_i in B_eps}  sum_i loss_i(x + delta_i) + lambda * g(delta_1..M)
Outer objective, at the adversarial points (the authors' average of clean and adversarial
losses; M tasks, so 2M terms):
    (sum_i clean loss_i + sum_i adv loss_i) / (2M) + lambda * g
g is computed from input gradients taken with create_graph=True, so minimising lambda * g
differentiates through them (double backprop) into the trunk and every head. With lambda = 0
g is still computed, from plain gradients and for the metrics only: it never reaches the
weights, and the step is exactly AP+SE, the plain average (tests compare the two).

Standard ensemble pretraining (mode "std") minimises sum_i clean loss_i / M + lambda * g with
g on the clean input gradients: the same regulariser without an adversary.

Under bf16 autocast the forward passes run in bf16, the losses and every gradient of x are
float32 (x is a float32 leaf), and the regulariser's math runs in float32/float64 with
autocast off (diversity.py).

Double backprop needs every op in the graph to have a differentiable backward. The fused
attention kernels (flash, memory-efficient; Selfie's transformer) do not, so while lambda > 0
the forward passes run scaled-dot-product attention on its math backend: the same function,
composed of ordinary differentiable ops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from robench.attacks.multi_pgd import MultiPGD
from robench.models import Classifier
from robench.pretext import PretextBatch
from robench.pretext.ensemble import PretextEnsemble
from robench.train.diversity import diversity_logdet
from robench.train.loop import StepOutput

AutocastFn = Callable[[], contextlib.AbstractContextManager]


class EnsembleStep:
    """The ensemble's training step and validation, for the pretraining job's epoch loop."""

    def __init__(
        self,
        backbone: Classifier,
        ensemble: PretextEnsemble,
        optimizer: torch.optim.Optimizer,
        *,
        diversity: float,
        ridge: float,
        attack: MultiPGD | None,
        autocast: AutocastFn = contextlib.nullcontext,
    ) -> None:
        if diversity < 0:
            raise ValueError(f"diversity (lambda) must be >= 0, got {diversity}")
        self.backbone = backbone
        self.ensemble = ensemble
        self.optimizer = optimizer
        self.diversity = diversity
        self.ridge = ridge
        self.attack = attack
        self.autocast = autocast
        self.modules = nn.ModuleDict({"backbone": backbone, "ensemble": ensemble})

    def __call__(self, x: torch.Tensor, _: torch.Tensor, generator: torch.Generator) -> StepOutput:
        """Pose, attack, and take one optimiser step; all randomness from `generator`."""
        batches = self.ensemble.make_batches(x, generator)
        points = self.perturb(x, batches, generator) if self.attack is not None else None
        self.modules.train()
        loss, extras, correct, predictions = self.objective(x, batches, points)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return StepOutput(loss.detach(), correct, predictions, extras)

    def perturb(
        self,
        x: torch.Tensor,
        batches: dict[str, PretextBatch],
        generator: torch.Generator | None,
    ) -> list[torch.Tensor]:
        """The inner maximisation: one adversarial x + delta_i per task, in the task order."""
        assert self.attack is not None
        n = len(x)

        def objective(points: list[torch.Tensor]) -> torch.Tensor:
            losses = self._example_losses(points, batches)
            total = torch.stack([loss.sum() for loss in losses]).sum()
            if self.diversity == 0:
                return total  # separable: every delta_i ascends its own task's loss
            grads = torch.autograd.grad(total, points, create_graph=True)
            # g is a batch mean; times n it is the sum of per-example terms, like the losses.
            return total + self.diversity * n * diversity_logdet(list(grads), self.ridge)

        return self.attack.perturb_many(
            self.modules, objective, x, len(self.ensemble.tasks), generator
        )

    def objective(
        self,
        x: torch.Tensor,
        batches: dict[str, PretextBatch],
        points: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, int]:
        """The outer loss at the given adversarial points (None: standard pretraining).

        Returns the loss, the metrics (per-task clean and adversarial losses, the mean
        adversarial loss, g), the number of correct clean predictions and of predictions.
        """
        names = self.ensemble.names
        adversarial = points is not None
        # The points g is taken at: the adversarial ones, or the clean image for every task.
        leaves = [
            p.detach().requires_grad_(True) for p in (points if adversarial else [x] * len(names))
        ]
        extras: dict[str, torch.Tensor] = {}
        clean = []
        correct = torch.zeros((), device=x.device, dtype=torch.long)
        predictions = 0
        for (name, task), leaf in zip(self.ensemble.members(), leaves, strict=True):
            batch = batches[name]
            inputs = batch.inputs if adversarial else task.pose(leaf, batch)
            # adversarial: g is taken at the adversarial points, the clean pass needs no
            # double backprop (nor the slower attention kernel)
            with self.autocast() if adversarial else self._forward():
                logits = task.logits(self.backbone, inputs, batch)
            clean.append(task.example_losses(logits, batch.targets))
            correct = correct + (logits.argmax(1) == batch.targets).sum()
            predictions += batch.targets.numel()
            extras[f"loss_clean_{name}"] = clean[-1].detach().mean()
        clean_means = [loss.mean() for loss in clean]
        if adversarial:
            adv = self._example_losses(leaves, batches)
            adv_means = [loss.mean() for loss in adv]
            for name, loss in zip(names, adv_means, strict=True):
                extras[f"loss_adv_{name}"] = loss.detach()
            extras["loss_adv"] = torch.stack(adv_means).detach().mean()
            loss = (sum(clean_means) + sum(adv_means)) / (2 * len(names))
            at_points = adv
        else:
            loss = sum(clean_means) / len(names)
            at_points = clean
        regularise = self.diversity > 0
        total = torch.stack([per_example.sum() for per_example in at_points]).sum()
        grads = torch.autograd.grad(total, leaves, create_graph=regularise, retain_graph=True)
        g = diversity_logdet(list(grads), self.ridge)
        extras["diversity"] = g.detach()
        if regularise:
            loss = loss + self.diversity * g
        assert isinstance(loss, torch.Tensor)
        return loss, extras, correct, predictions

    def _forward(self) -> contextlib.AbstractContextManager:
        """Autocast, and attention kernels that double backprop can differentiate (lambda > 0)."""
        stack = contextlib.ExitStack()
        stack.enter_context(self.autocast())
        if self.diversity > 0:
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        return stack

    def _example_losses(
        self, points: list[torch.Tensor], batches: dict[str, PretextBatch]
    ) -> list[torch.Tensor]:
        """Per-example losses of every task, task i posed on points[i]."""
        losses = []
        for (name, task), point in zip(self.ensemble.members(), points, strict=True):
            batch = batches[name]
            with self._forward():
                logits = task.logits(self.backbone, task.pose(point, batch), batch)
            losses.append(task.example_losses(logits, batch.targets))
        return losses

    @torch.no_grad()
    def validate(
        self,
        batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
        generator: torch.Generator,
        num_examples: int,
    ) -> dict[str, Any]:
        """Clean pretext loss and accuracy per task, and over all tasks, on held-out images."""
        self.modules.eval()
        names = self.ensemble.names
        loss_sum = dict.fromkeys(names, 0.0)
        correct = dict.fromkeys(names, 0)
        total = dict.fromkeys(names, 0)
        with self.autocast():
            for x, _ in batches:
                for name, batch in self.ensemble.make_batches(x, generator).items():
                    task = self.ensemble.tasks[name]
                    logits = task.logits(self.backbone, batch.inputs, batch)
                    loss_sum[name] += float(task.loss(logits, batch.targets)) * len(x)
                    correct[name] += int((logits.argmax(1) == batch.targets).sum())
                    total[name] += batch.targets.numel()
        n = max(num_examples, 1)
        record: dict[str, Any] = {
            "val_pretext_loss": sum(loss_sum.values()) / len(names) / n,
            "val_pretext_acc": 100 * sum(correct.values()) / max(sum(total.values()), 1),
        }
        for name in names:
            record[f"val_pretext_loss_{name}"] = loss_sum[name] / n
            record[f"val_pretext_acc_{name}"] = 100 * correct[name] / max(total[name], 1)
        return record
