"""Self-supervised pretraining of the trunk: standard (P2), adversarial (P3), smoothed (PS).

P3 crafts PGD examples on the pretext loss (the adversary perturbs the task's own input: the
rotated image, the shuffled image, or the whole image for Selfie) and minimises
0.5 * (clean loss + adversarial loss); P2 minimises the clean loss. PS (the paper's Table 8:
"random smoothing [Cohen et al. 2019] in place of AT ... other protocols remain all
unchanged") replaces the adversarial input by the task's input plus N(0, sigma^2) noise and
keeps P3's objective, 0.5 * (clean loss + noisy loss): swapping only the perturbation is what
"in place of AT, protocols unchanged" asks, and it keeps PS and P3 comparable term by term
(Cohen et al.'s noise-only training would change the objective too). The noise is not clipped
to [0, 1], as in Cohen et al.: the smoothed classifier is defined for Gaussian noise exactly.
No attack is built for P2 or PS. The steps themselves are `PretextStep` (steps.py) and
`EnsembleStep` (ensemble_pretrain.py: the task "ensemble", several tasks on one trunk).

The learning rate follows the paper's cosine schedule. The run directory keeps theta_p
(`trunk.*`) and theta_pc (`task_head.*`: every task's head for an ensemble) as separate
checkpoints, because fine-tuning inherits only the trunk.

Under torchrun, `robench train` pretrains on rank 0 alone while the other ranks wait (see
`train.stage`): each pretext task poses its own batch structure (rotated copies, tile
permutations, masked patches), so slicing it across ranks exactly is task by task work, and
pretraining is the smaller part of a suite (one per pretext, shared by its runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from robench.attacks import build_attack
from robench.config import PretrainSpec
from robench.data import BatchIterator, make_splits
from robench.data.resize import resize_dataset
from robench.distributed import DistContext
from robench.models import create
from robench.pretext import PretextTask, create_task
from robench.pretext.ensemble import PretextEnsemble
from robench.runs import RunDir, RunRecord
from robench.runs import checkpoint as ckpt
from robench.train.ensemble_pretrain import EnsembleStep
from robench.train.lifecycle import (
    TrainEnv,
    data_record,
    provenance_sections,
    run_lifecycle,
    runtime_section,
)
from robench.train.loop import EpochProgress, SyncFn, run_epoch
from robench.train.schedule import cosine_lr, make_optimizer, set_lr
from robench.train.steps import PretextStep
from robench.train.transfer import trunk_tensors

INPUT_SIZE = 32
TASK_PREFIX = "task."


def pretrain_run(spec: PretrainSpec, out_dir: Path, env: TrainEnv) -> dict[str, Any]:
    """Pretrain into `out_dir/<spec.name>`; resume an unfinished run, skip a finished one."""
    return run_lifecycle(
        RunDir(out_dir / spec.name),
        spec,
        lambda: PretrainJob(spec, env),
        env=env,
        ctx=DistContext(),
    )


class PretrainJob:
    """Pretraining in the lifecycle: trunk + task heads, cosine lr, pretext validation."""

    def __init__(self, spec: PretrainSpec, env: TrainEnv) -> None:
        p = spec.protocol
        runtime = env.runtime
        self.spec, self.env = spec, env
        self.epochs = p.epochs
        splits = make_splits(
            str(p.data),
            p.data_dir or env.data_dir,
            val_fraction=p.val_fraction,
            seed=int(p.seed),
            train_subset=p.train_subset,
        )
        train = resize_dataset(splits.train, INPUT_SIZE)
        val = resize_dataset(
            splits.val.first(min(p.val_subset or len(splits.val), len(splits.val))), INPUT_SIZE
        )
        torch.manual_seed(int(p.seed))
        self.backbone = backbone = create(str(p.model), num_classes=len(splits.train.classes))
        task: PretextTask | PretextEnsemble
        if spec.ensemble:
            task = PretextEnsemble(backbone, p.ensemble_tasks, p.task_options)
        else:
            task = create_task(spec.task, backbone, **p.task_options.get(spec.task, {}))
        self.task = task
        self.module = nn.ModuleDict({"trunk": backbone.trunk, "task": task})  # checkpoint names
        runtime.prepare(backbone)
        runtime.prepare(task)
        self.lr_max = p.lr_max or task.default_lr_max
        self.lr_min = p.lr_min or task.default_lr_min
        self.optimizer = make_optimizer(
            list(self.module.parameters()),
            lr=self.lr_max,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            device=runtime.device,
        )
        self.record = RunRecord(
            "pretrain",
            spec,
            data_record(splits, len(train), len(val), detailed=False),
            env.suite,
            {
                "task_config": task.config(),
                "lr": {"max": self.lr_max, "min": self.lr_min, "schedule": "cosine"},
                "runtime": runtime_section(runtime, DistContext(), sync_bn=False, compiled=False),
                **provenance_sections(),
            },
        )
        self.batches = BatchIterator(
            train,
            p.batch_size,
            device=runtime.device,
            shuffle=True,
            augment=True,
            seed=int(p.seed),
            channels_last=runtime.channels_last,
        )
        self.val_batches = BatchIterator(val, p.batch_size, device=runtime.device)
        self.step: EnsembleStep | PretextStep
        if isinstance(task, PretextEnsemble):
            self.step = EnsembleStep(
                backbone,
                task,
                self.optimizer,
                diversity=p.diversity,
                ridge=p.diversity_ridge,
                attack=build_attack(p.attack.spec("multi_pgd"), runtime)  # type: ignore[arg-type]
                if spec.adversarial
                else None,
                autocast=runtime.autocast,
            )
        else:
            self.step = PretextStep(
                backbone,
                task,
                self.optimizer,
                runtime,
                attack=build_attack(p.attack, runtime) if spec.adversarial else None,
                smoothing_sigma=p.smoothing_sigma if spec.smoothing else None,
            )

    # -- the lifecycle's questions ------------------------------------------------------------

    def restore(self, meta: dict[str, Any]) -> None:
        pass  # the cosine schedule is a function of the epoch: nothing else to take back

    def state_meta(self) -> dict[str, Any]:
        return {}

    def checkpoint_meta(self, epoch: int, record: dict[str, Any] | None) -> dict[str, Any]:
        spec, p = self.spec, self.spec.protocol
        meta = {
            "architecture": p.model,
            "pretext": spec.task,
            "mode": spec.mode,
            "scenario": spec.scenario,
            "pretraining": spec.name,
            "task_config": self.task.config(),
            "dataset": self.record.data.dataset,
            "attack_bn_mode": p.attack.bn_mode,
            "epoch": epoch,
        }
        if spec.ensemble:
            meta.update(
                ensemble_tasks=list(p.ensemble_tasks),
                diversity=p.diversity,
                diversity_ridge=p.diversity_ridge,
            )
        if spec.smoothing:
            meta["smoothing_sigma"] = p.smoothing_sigma
        return meta

    def run_epoch(
        self,
        epoch: int,
        resume_from: EpochProgress | None,
        checkpoint_every: int,
        on_checkpoint,
        on_sync: SyncFn | None = None,
    ) -> dict[str, Any]:
        p = self.spec.protocol
        lr = cosine_lr(self.lr_max, self.lr_min, epoch, p.epochs)
        set_lr(self.optimizer, lr)
        self.batches.set_epoch(epoch)
        stats = run_epoch(
            self.batches,
            self.step,
            name=self.spec.name,
            epoch=epoch,
            epochs=p.epochs,
            console=self.env.console,
            device=self.env.runtime.device,
            seed=int(p.seed),
            resume_from=resume_from,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
            on_sync=on_sync,
        )
        record: dict[str, Any] = {
            "epoch": epoch,
            "lr": lr,
            "train_loss": stats.loss,
            "train_pretext_acc": stats.accuracy,
            "train_images_per_s": stats.images_per_s,
            "seconds": stats.seconds,
        }
        # loss_adv / loss_noisy; for an ensemble also per-task losses and the diversity g
        record.update({f"train_{key}": value for key, value in sorted(stats.extras.items())})
        record.update(self._validate())
        return record

    def after_epoch(self, rd: RunDir, epoch: int, record: dict[str, Any], write: bool) -> None:
        pass  # no model selection during pretraining: fine-tuning takes the last trunk

    def finish(self, rd: RunDir, history: list[dict[str, Any]]) -> dict[str, Any]:
        spec = self.spec
        final = self.checkpoint_meta(spec.protocol.epochs, None)
        ckpt.save_checkpoint(rd.path / "trunk", trunk_tensors(self.backbone), final)
        task_state = {TASK_PREFIX + k: v for k, v in self.task.state_dict().items()}
        ckpt.save_checkpoint(rd.path / "task_head", task_state, final)
        return {
            "pretraining": spec.name,
            "task": spec.task,
            "mode": spec.mode,
            "epochs": spec.protocol.epochs,
        }

    def epoch_line(self, r: dict[str, Any]) -> str:
        adv = f"  adv loss {r['train_loss_adv']:.4f}" if "train_loss_adv" in r else ""
        if "train_loss_noisy" in r:
            adv += f"  noisy loss {r['train_loss_noisy']:.4f}"
        if "train_diversity" in r:
            adv += f"  g {r['train_diversity']:.3f}"
        return (
            f"{self.spec.name} epoch {r['epoch']:>3}  lr {r['lr']:.4g}  "
            f"loss {r['train_loss']:.4f}{adv}  pretext acc {r['train_pretext_acc']:.1f}  "
            f"val pretext acc {r['val_pretext_acc']:.1f}  "
            f"{r['train_images_per_s']:.0f} img/s  {r['seconds']:.1f}s"
        )

    def _validate(self) -> dict[str, Any]:
        generator = self.env.runtime.generator(int(self.spec.protocol.seed))  # same each epoch
        if isinstance(self.step, EnsembleStep):
            return self.step.validate(self.val_batches, generator, self.val_batches.num_examples)
        task = self.task
        assert isinstance(task, PretextTask)
        self.backbone.eval()
        task.eval()
        correct = total = 0
        loss_sum = 0.0
        with torch.no_grad(), self.env.runtime.autocast():
            for x, _ in self.val_batches:
                batch = task.make_batch(x, generator)
                logits = task.logits(self.backbone, batch.inputs, batch)
                loss_sum += float(task.loss(logits, batch.targets)) * len(x)
                correct += int((logits.argmax(1) == batch.targets).sum())
                total += batch.targets.numel()
        n = self.val_batches.num_examples
        return {
            "val_pretext_loss": loss_sum / max(n, 1),
            "val_pretext_acc": 100 * correct / max(total, 1),
        }
