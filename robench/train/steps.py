"""The training steps, one named callable per mode: (x, y, generator) -> StepOutput.

`run_epoch` (loop.py) calls a step once per batch with that step's seeded generator; a step
attacks (if its mode does), computes the loss, and takes one optimiser step. The modes:

ClassifierStep        fine-tuning, standard (no attack) or adversarial (PGD on the inputs);
                      under torchrun each rank takes its slice of the global batch
PretextStep           self-supervised pretraining: P2 standard, P3 adversarial (PGD on the
                      pretext input), PS random smoothing (Gaussian noise in place of PGD)
RotationAuxStep       the Figure 3 baseline (rotation_aux.py)
EnsembleStep          ensemble pretraining with the diversity term (ensemble_pretrain.py)

They are importable on their own, so the speed benchmark times these very steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from robench.attacks import Attack
from robench.distributed import DistContext
from robench.models import Classifier
from robench.pretext import PretextTask
from robench.runtime import Runtime
from robench.train import ddp
from robench.train.loop import StepOutput


class ClassifierStep:
    """Standard (attack None) or PGD-adversarial training of a classifier."""

    def __init__(
        self,
        model: Classifier,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        attack: Attack | None = None,
        ctx: DistContext | None = None,
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.runtime = runtime
        self.attack = attack
        self.ctx = ctx or DistContext()
        # Attacks run the bare model (eval-mode BatchNorm needs no other rank); the training
        # forward runs under DDP, whose backward averages the ranks' gradients.
        self.forward = runtime.maybe_compile(model)
        self.train_forward = (
            runtime.maybe_compile(ddp.wrap(model, self.ctx, runtime.device))
            if self.ctx.enabled
            else self.forward
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> StepOutput:
        ctx = self.ctx
        shard = ctx.shard(len(y))  # this rank's contiguous slice (all of it when alone)
        if ctx.enabled:
            x, y = shard.take(x), shard.take(y)
        if self.attack is not None:
            x = self.attack.perturb(
                self.forward, x, y, generator, shard=shard if ctx.enabled else None
            )
        with self.runtime.autocast():
            logits = self.train_forward(x)
        if ctx.enabled:
            loss, mean_loss = ddp.shard_loss(logits.float(), y, ctx.world_size, shard.total)
        else:
            loss = mean_loss = F.cross_entropy(logits.float(), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return StepOutput(mean_loss, (logits.argmax(1) == y).sum(), len(y), examples=len(y))


class PretextStep:
    """Pretraining on one pretext task: P2 (neither), P3 (`attack`) or PS (`smoothing_sigma`).

    P3 and PS minimise 0.5 * (clean loss + perturbed loss): the perturbed input is the PGD
    example on the pretext loss, or the task's input plus N(0, sigma^2) noise (unclipped).
    """

    def __init__(
        self,
        backbone: Classifier,
        task: PretextTask,
        optimizer: torch.optim.Optimizer,
        runtime: Runtime,
        *,
        attack: Attack | None = None,
        smoothing_sigma: float | None = None,
    ) -> None:
        if attack is not None and smoothing_sigma is not None:
            raise ValueError("a pretraining step is adversarial or smoothed, not both")
        self.backbone = backbone
        self.task = task
        self.optimizer = optimizer
        self.runtime = runtime
        self.attack = attack
        self.smoothing_sigma = smoothing_sigma

    def __call__(self, x: torch.Tensor, _: torch.Tensor, generator: torch.Generator) -> StepOutput:
        batch = self.task.make_batch(x, generator)
        extras: dict[str, torch.Tensor] = {}
        perturbed = None
        if self.attack is not None:
            bound = self.task.bind(self.backbone, batch)
            perturbed = self.attack.perturb(bound, batch.inputs, batch.targets, generator)
        elif self.smoothing_sigma is not None:
            noise = torch.randn(batch.inputs.shape, generator=generator, device=batch.inputs.device)
            perturbed = batch.inputs + self.smoothing_sigma * noise
        self.backbone.train()
        self.task.train()
        with self.runtime.autocast():
            logits = self.task.logits(self.backbone, batch.inputs, batch)
        loss = self.task.loss(logits, batch.targets)
        if perturbed is not None:
            with self.runtime.autocast():
                logits_perturbed = self.task.logits(self.backbone, perturbed, batch)
            loss_perturbed = self.task.loss(logits_perturbed, batch.targets)
            key = "loss_adv" if self.attack is not None else "loss_noisy"
            extras[key] = loss_perturbed.detach()
            loss = 0.5 * (loss + loss_perturbed)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        correct = (logits.argmax(1) == batch.targets).sum()
        return StepOutput(loss, correct, batch.targets.numel(), extras)
