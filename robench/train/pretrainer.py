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
No attack is built for P2 or PS.

The task "ensemble" trains several tasks on one trunk (ensemble_pretrain.py). The learning
rate follows the paper's cosine schedule. The run directory keeps theta_p (`trunk.*`) and
theta_pc (`task_head.*`: every task's head for an ensemble) as separate checkpoints, because
fine-tuning inherits only the trunk.

Under torchrun, `robench train` pretrains on rank 0 alone while the other ranks wait (see
`workflow.train_suite`): each pretext task poses its own batch structure (rotated copies,
tile permutations, masked patches), so slicing it across ranks exactly is task by task work,
and pretraining is the smaller part of a suite (one per pretext, shared by its runs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from robench.atomic import write_json_atomic
from robench.attacks.factory import multi_pgd_from_config, pgd_from_config
from robench.config import PretrainSpec, Suite
from robench.data import ArrayDataset, BatchIterator, make_splits
from robench.data.resize import resize_dataset
from robench.models import Classifier, create
from robench.pretext import PretextTask, create_task
from robench.pretext.ensemble import PretextEnsemble
from robench.provenance import git_revision, now_iso, versions
from robench.runtime import Runtime
from robench.train import checkpoint as ckpt
from robench.train.ensemble_pretrain import EnsembleStep
from robench.train.loop import EpochProgress, StepOutput, run_epoch
from robench.train.metrics_log import append_metrics, truncate_metrics
from robench.train.run_dir import RunDir, suite_provenance
from robench.train.schedule import cosine_lr, make_optimizer, set_lr
from robench.train.transfer import trunk_tensors

INPUT_SIZE = 32
TASK_PREFIX = "task."


def pretrain_run(
    spec: PretrainSpec,
    out_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    suite: Suite | None = None,
    data_dir: str | Path | None = None,
    checkpoint_every: int = 100,
) -> dict[str, Any]:
    """Pretrain into `out_dir/<spec.name>`; resume an unfinished run, skip a finished one.

    Mid-epoch state is saved every `checkpoint_every` steps (0: only at epoch ends).
    """
    rd = RunDir(out_dir / spec.name)
    if rd.is_finished():
        rd.check_same("pretraining", spec.to_dict())
        console.print(f"[dim]{spec.name}: already pretrained ({rd.path}), skipping[/dim]")
        return rd.read_result()
    p = spec.protocol
    splits = make_splits(
        str(p.data),
        p.data_dir or data_dir,
        val_fraction=p.val_fraction,
        seed=int(p.seed),
        train_subset=p.train_subset,
    )
    train = resize_dataset(splits.train, INPUT_SIZE)
    val = resize_dataset(
        splits.val.first(min(p.val_subset or len(splits.val), len(splits.val))), INPUT_SIZE
    )

    torch.manual_seed(int(p.seed))
    backbone = create(str(p.model), num_classes=len(splits.train.classes))
    task: PretextTask | PretextEnsemble
    if spec.ensemble:
        task = PretextEnsemble(backbone, p.ensemble_tasks, p.task_options)
    else:
        task = create_task(spec.task, backbone, **p.task_options.get(spec.task, {}))
    trained = nn.ModuleDict({"trunk": backbone.trunk, "task": task})  # names for checkpoints
    runtime.prepare(backbone)
    runtime.prepare(task)
    lr_max = p.lr_max or task.default_lr_max
    lr_min = p.lr_min or task.default_lr_min
    optimizer = make_optimizer(
        list(trained.parameters()),
        lr=lr_max,
        momentum=p.momentum,
        weight_decay=p.weight_decay,
        device=runtime.device,
    )
    config = {
        "pretraining": spec.to_dict(),
        "suite": suite_provenance(suite),
        "data": {
            "dataset": splits.dataset,
            "is_jpeg_copy": splits.is_jpeg_copy,
            "content_hash": splits.content_hash,
            "train": len(train),
            "val": len(val),
        },
        "task_config": task.config(),
        "lr": {"max": lr_max, "min": lr_min, "schedule": "cosine"},
        "runtime": {"device": runtime.describe()},
        "git_revision": git_revision(),
        "versions": versions(),
        "created": now_iso(),
    }
    rd.check_same("pretraining", spec.to_dict())
    rd.path.mkdir(parents=True, exist_ok=True)
    write_json_atomic(rd.config, config)

    resumed = rd.resume(trained, optimizer)
    start_epoch = 0 if resumed is None else int(resumed["epoch"])
    if resumed is not None:
        console.print(f"{spec.name}: resuming after epoch {start_epoch}")
    truncate_metrics(rd.metrics, start_epoch)
    resume_from = rd.resume_partial(trained, optimizer, start_epoch, runtime.device)
    if resume_from is not None:
        console.print(
            f"{spec.name}: resuming epoch {start_epoch + 1} after step {resume_from.step}"
        )

    epoch_runner = _PretrainEpoch(spec, backbone, task, optimizer, train, val, runtime, console)
    meta = _meta(spec, task, config)
    for epoch in range(start_epoch + 1, p.epochs + 1):
        lr = cosine_lr(lr_max, lr_min, epoch, p.epochs)
        set_lr(optimizer, lr)

        def save_partial(progress: EpochProgress, epoch: int = epoch) -> None:
            state = {
                **ckpt.model_tensors(trained),
                **ckpt.optimizer_tensors(optimizer, trained),
                **progress.tensors(),
            }
            partial_meta = {**meta, "epoch": epoch, "progress": progress.meta()}
            ckpt.save_checkpoint(rd.partial_checkpoint, state, partial_meta)

        record = {
            "epoch": epoch,
            "lr": lr,
            **epoch_runner.run(epoch, resume_from, checkpoint_every, save_partial),
        }
        resume_from = None
        append_metrics(rd.metrics, record)
        state = {**ckpt.model_tensors(trained), **ckpt.optimizer_tensors(optimizer, trained)}
        ckpt.save_checkpoint(rd.checkpoint("last"), state, {**meta, "epoch": epoch})
        rd.drop_partial()
        console.print(_epoch_line(spec.name, record))

    final = {**meta, "epoch": p.epochs}
    ckpt.save_checkpoint(rd.path / "trunk", trunk_tensors(backbone), final)
    task_state = {TASK_PREFIX + k: v for k, v in task.state_dict().items()}
    ckpt.save_checkpoint(rd.path / "task_head", task_state, final)
    result = {
        "pretraining": spec.name,
        "task": spec.task,
        "mode": spec.mode,
        "epochs": p.epochs,
        "finished": now_iso(),
    }
    write_json_atomic(rd.result, result)
    return result


class _PretrainEpoch:
    """One pretraining epoch and its validation (pretext accuracy on held-out images)."""

    def __init__(
        self,
        spec: PretrainSpec,
        backbone: Classifier,
        task: PretextTask | PretextEnsemble,
        optimizer: torch.optim.Optimizer,
        train: ArrayDataset,
        val: ArrayDataset,
        runtime: Runtime,
        console: Console,
    ) -> None:
        self.spec = spec
        self.backbone = backbone
        self.task = task
        self.optimizer = optimizer
        self.runtime = runtime
        self.console = console
        p = spec.protocol
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
        self.attack = None
        self.ensemble_step: EnsembleStep | None = None
        if isinstance(task, PretextEnsemble):
            self.ensemble_step = EnsembleStep(
                backbone,
                task,
                optimizer,
                diversity=p.diversity,
                ridge=p.diversity_ridge,
                attack=multi_pgd_from_config(p.attack, runtime) if spec.adversarial else None,
                autocast=runtime.autocast,
            )
        elif spec.adversarial:
            self.attack = pgd_from_config(p.attack, runtime)

    def run(
        self,
        epoch: int,
        resume_from: EpochProgress | None = None,
        checkpoint_every: int = 0,
        on_checkpoint: Callable[[EpochProgress], None] | None = None,
    ) -> dict[str, Any]:
        p = self.spec.protocol
        self.batches.set_epoch(epoch)

        def step(x: torch.Tensor, _: torch.Tensor, generator: torch.Generator) -> StepOutput:
            assert isinstance(self.task, PretextTask)
            batch = self.task.make_batch(x, generator)
            extras: dict[str, torch.Tensor] = {}
            inputs_adv = None
            if self.attack is not None:
                bound = self.task.bind(self.backbone, batch)
                inputs_adv = self.attack.perturb(bound, batch.inputs, batch.targets, generator)
            elif self.spec.smoothing:
                noise = torch.randn(
                    batch.inputs.shape, generator=generator, device=batch.inputs.device
                )
                inputs_adv = batch.inputs + p.smoothing_sigma * noise
            self.backbone.train()
            self.task.train()
            with self.runtime.autocast():
                logits = self.task.logits(self.backbone, batch.inputs, batch)
            loss = self.task.loss(logits, batch.targets)
            if inputs_adv is not None:
                with self.runtime.autocast():
                    logits_adv = self.task.logits(self.backbone, inputs_adv, batch)
                loss_adv = self.task.loss(logits_adv, batch.targets)
                extras["loss_noisy" if self.spec.smoothing else "loss_adv"] = loss_adv.detach()
                loss = 0.5 * (loss + loss_adv)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            correct = (logits.argmax(1) == batch.targets).sum()
            return StepOutput(loss, correct, batch.targets.numel(), extras)

        stats = run_epoch(
            self.batches,
            step if self.ensemble_step is None else self.ensemble_step,
            name=self.spec.name,
            epoch=epoch,
            epochs=p.epochs,
            console=self.console,
            device=self.runtime.device,
            seed=int(p.seed),
            resume_from=resume_from,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
        )
        record: dict[str, Any] = {
            "train_loss": stats.loss,
            "train_pretext_acc": stats.accuracy,
            "train_images_per_s": stats.images_per_s,
            "seconds": stats.seconds,
        }
        # loss_adv / loss_noisy; for an ensemble also per-task losses and the diversity g
        record.update({f"train_{key}": value for key, value in sorted(stats.extras.items())})
        record.update(self._validate(epoch))
        return record

    def _validate(self, epoch: int) -> dict[str, Any]:
        generator = self.runtime.generator(int(self.spec.protocol.seed))  # same posing each epoch
        if self.ensemble_step is not None:
            n = self.val_batches.num_examples
            return self.ensemble_step.validate(self.val_batches, generator, n)
        assert isinstance(self.task, PretextTask)
        self.backbone.eval()
        self.task.eval()
        correct = total = 0
        loss_sum = 0.0
        with torch.no_grad(), self.runtime.autocast():
            for x, _ in self.val_batches:
                batch = self.task.make_batch(x, generator)
                logits = self.task.logits(self.backbone, batch.inputs, batch)
                loss_sum += float(self.task.loss(logits, batch.targets)) * len(x)
                correct += int((logits.argmax(1) == batch.targets).sum())
                total += batch.targets.numel()
        n = self.val_batches.num_examples
        return {
            "val_pretext_loss": loss_sum / max(n, 1),
            "val_pretext_acc": 100 * correct / max(total, 1),
        }


def _meta(
    spec: PretrainSpec, task: PretextTask | PretextEnsemble, config: dict[str, Any]
) -> dict[str, Any]:
    p = spec.protocol
    meta = {
        "architecture": p.model,
        "pretext": spec.task,
        "mode": spec.mode,
        "scenario": spec.scenario,
        "pretraining": spec.name,
        "task_config": task.config(),
        "dataset": config["data"]["dataset"],
        "attack_bn_mode": p.attack.bn_mode,
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


def _epoch_line(name: str, r: dict[str, Any]) -> str:
    adv = f"  adv loss {r['train_loss_adv']:.4f}" if "train_loss_adv" in r else ""
    if "train_loss_noisy" in r:
        adv += f"  noisy loss {r['train_loss_noisy']:.4f}"
    if "train_diversity" in r:
        adv += f"  g {r['train_diversity']:.3f}"
    return (
        f"{name} epoch {r['epoch']:>3}  lr {r['lr']:.4g}  loss {r['train_loss']:.4f}{adv}  "
        f"pretext acc {r['train_pretext_acc']:.1f}  val pretext acc {r['val_pretext_acc']:.1f}  "
        f"{r['train_images_per_s']:.0f} img/s  {r['seconds']:.1f}s"
    )
