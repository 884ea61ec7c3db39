"""Fine-tuning (and end-to-end, P1) training of a classifier, with validation every epoch.

One epoch: shuffle and augment on the device, take a step (steps.py: standard or PGD
adversarial; the Figure 3 baseline's joint step), then measure validation TA and RA with the
flags primitive. The best-TA checkpoint is the paper's model selection; the best-RA one is kept
too, and `epochs_to_best` records when each was reached. Everything that makes an epoch (data
order, augmentation, attack starts) is seeded from (seed, epoch, step), so a run killed at any
checkpoint and rerun continues exactly as if it had never stopped (lifecycle.py).

Under torchrun (see `robench.distributed`) every rank holds the same data and model, trains
on its contiguous slice of each global batch under DistributedDataParallel with BatchNorm over
the global batch (`sync_bn`), validates a share of the validation batches, and reduces the
metrics, so each rank has the numbers one process would have; only rank 0 writes the run
directory. A mid-epoch checkpoint holds the global running sums, so it resumes under any
number of processes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from robench.attacks import build_attack
from robench.config import RunSpec
from robench.data import BatchIterator, make_splits
from robench.distributed import DistContext, current
from robench.errors import ConfigError
from robench.flags import compute_flags
from robench.models import attach_rotation_head, create
from robench.runs import RunDir, RunRecord
from robench.runs import checkpoint as ckpt
from robench.train import ddp
from robench.train.lifecycle import (
    TrainEnv,
    data_record,
    provenance_sections,
    run_lifecycle,
    runtime_section,
)
from robench.train.loop import EpochProgress, SyncFn, run_epoch
from robench.train.rotation_aux import RotationAuxiliaryObjective, RotationAuxStep
from robench.train.schedule import lr_at_epoch, make_optimizer, set_lr
from robench.train.steps import ClassifierStep
from robench.train.transfer import freeze, inherit_trunk


@dataclasses.dataclass
class BestSoFar:
    ta: float = -1.0
    ta_epoch: int = 0
    ra: float = -1.0
    ra_epoch: int = 0


def train_run(run: RunSpec, out_dir: Path, env: TrainEnv) -> dict[str, Any]:
    """Train `run` into `out_dir/<run.name>`; resume or skip work already on disk.

    A run with pretraining starts from the trunk of `out_dir/pretrain/<pretraining name>`.
    """
    ctx = current()
    return run_lifecycle(
        RunDir(out_dir / run.name),
        run,
        lambda: FinetuneJob(run, out_dir, env, ctx),
        env=env,
        ctx=ctx,
    )


class FinetuneJob:
    """Fine-tuning in the lifecycle: model, optimiser, step, validation, best checkpoints."""

    def __init__(self, run: RunSpec, out_dir: Path, env: TrainEnv, ctx: DistContext) -> None:
        p = run.protocol
        runtime = env.runtime
        self.run, self.env, self.ctx = run, env, ctx
        self.epochs = p.epochs
        splits = make_splits(
            p.data,
            env.data_dir,
            val_fraction=p.val_fraction,
            seed=p.seed,
            train_subset=p.train_subset,
            val_subset=p.val_subset,
            test_subset=p.eval_n,
        )
        torch.manual_seed(p.seed)
        model = create(p.model, num_classes=len(splits.train.classes))
        if p.auxiliary == "rotation":
            attach_rotation_head(model)
        inherited = inherit_trunk(run, model, out_dir)
        if run.frozen_trunk:
            freeze(model.trunk)
        if ctx.enabled and p.sync_bn:
            ddp.convert_batchnorm(model, runtime.device)
        runtime.prepare(model)
        self.model = self.module = model
        self.record = RunRecord(
            "finetune",
            run,
            data_record(splits, len(splits.train), len(splits.val), detailed=True),
            env.suite,
            {
                "runtime": runtime_section(runtime, ctx, sync_bn=ctx.enabled and p.sync_bn),
                "attack_bn_mode": p.train_attack.bn_mode,
                "inherited_trunk": inherited,
                **provenance_sections(),
            },
        )
        self.optimizer = make_optimizer(
            list(model.parameters()),
            lr=p.lr,
            momentum=p.momentum,
            weight_decay=p.weight_decay,
            device=runtime.device,
        )
        self.best = BestSoFar()
        self.batches = BatchIterator(
            splits.train,
            p.batch_size,
            device=runtime.device,
            shuffle=True,
            augment=True,
            seed=p.seed,
            channels_last=runtime.channels_last,
        )
        self.val = splits.val
        self.val_ra = splits.val.first(min(p.val_ra_subset or len(splits.val), len(splits.val)))
        self.val_attack = build_attack(p.val_attack, runtime)
        train_attack = build_attack(p.train_attack, runtime) if run.adversarial else None
        if p.auxiliary is not None and ctx.enabled:
            # Its joint forward bypasses the DDP wrapper, so gradients would not be averaged.
            raise ConfigError(
                f"{run.name}: the rotation-auxiliary baseline trains in one process, not under "
                "torchrun"
            )
        if p.auxiliary == "rotation":
            objective = RotationAuxiliaryObjective(model, train_attack, p.auxiliary_weight, runtime)
            self.step = RotationAuxStep(objective, self.optimizer)
        else:
            self.step = ClassifierStep(model, self.optimizer, runtime, train_attack, ctx)

    # -- the lifecycle's questions ------------------------------------------------------------

    def restore(self, meta: dict[str, Any]) -> None:
        self.best = BestSoFar(**meta["best"])

    def state_meta(self) -> dict[str, Any]:
        return {"best": dataclasses.asdict(self.best)}

    def checkpoint_meta(self, epoch: int, record: dict[str, Any] | None) -> dict[str, Any]:
        run = self.run
        return {
            "architecture": run.protocol.model,
            "num_classes": len(self.record.data.classes),
            "pretext": run.pretext,
            "scenario": run.scenario,
            "run": run.name,
            "epoch": epoch,
            "val_ta": None if record is None else record["val_ta"],
            "val_ra": None if record is None else record["val_ra"],
            "dataset": self.record.data.dataset,
            "attack_bn_mode": run.protocol.train_attack.bn_mode,
            "auxiliary": run.protocol.auxiliary,
        }

    def run_epoch(
        self,
        epoch: int,
        resume_from: EpochProgress | None,
        checkpoint_every: int,
        on_checkpoint,
        on_sync: SyncFn | None = None,
    ) -> dict[str, Any]:
        p = self.run.protocol
        lr = lr_at_epoch(p, epoch)
        set_lr(self.optimizer, lr)
        self.batches.set_epoch(epoch)
        self.model.train()
        if self.run.frozen_trunk:
            self.model.trunk.eval()  # frozen BatchNorm statistics: the trunk stays bit-identical
        stats = run_epoch(
            self.batches,
            self.step,
            name=self.run.name,
            epoch=epoch,
            epochs=p.epochs,
            console=self.env.console,
            device=self.env.runtime.device,
            seed=p.seed,
            resume_from=resume_from,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
            dist_ctx=self.ctx,
            on_sync=on_sync,
        )
        val = self._validate()
        return {
            "epoch": epoch,
            "lr": lr,
            "train_loss": stats.loss,
            "train_acc": stats.accuracy,
            "train_images_per_s": stats.images_per_s,
            **val,
            "seconds": stats.seconds + val["val_seconds"],
        }

    def after_epoch(self, rd: RunDir, epoch: int, record: dict[str, Any], write: bool) -> None:
        # Every rank has the same (reduced) record, so every rank tracks the same best.
        new_ta = record["val_ta"] > self.best.ta
        new_ra = record["val_ra"] is not None and record["val_ra"] > self.best.ra
        if new_ta:
            self.best.ta, self.best.ta_epoch = record["val_ta"], epoch
        if new_ra:
            self.best.ra, self.best.ra_epoch = record["val_ra"], epoch
        if write:
            meta = self.checkpoint_meta(epoch, record)
            weights = ckpt.model_tensors(self.model)
            if new_ta:
                ckpt.save_checkpoint(rd.checkpoint("best_ta"), weights, meta)
            if new_ra:
                ckpt.save_checkpoint(rd.checkpoint("best_ra"), weights, meta)

    def finish(self, rd: RunDir, history: list[dict[str, Any]]) -> dict[str, Any]:
        run, best = self.run, self.best
        return {
            "run": run.name,
            "scenario": run.scenario,
            "pretext": run.pretext,
            "epochs": run.protocol.epochs,
            "best_val_ta": best.ta,
            "epochs_to_best": best.ta_epoch,
            "best_val_ra": best.ra,
            "epochs_to_best_ra": best.ra_epoch,
            "train_seconds": sum(r["seconds"] for r in history),
        }

    def epoch_line(self, r: dict[str, Any]) -> str:
        ra = "-" if r["val_ra"] is None else f"{r['val_ra']:.2f}"
        return (
            f"{self.run.name} epoch {r['epoch']:>3}  lr {r['lr']:.4g}  "
            f"loss {r['train_loss']:.4f}  val TA {r['val_ta']:.2f}  val RA {ra}  "
            f"{r['train_images_per_s']:.0f} img/s  {r['seconds']:.1f}s"
        )

    def _validate(self) -> dict[str, Any]:
        p, runtime = self.run.protocol, self.env.runtime
        common = {"runtime": runtime, "batch_size": p.eval_batch_size, "dist": self.ctx}
        ta = compute_flags(self.model, self.val, **common)
        # A fixed attack seed every epoch, so epoch-to-epoch RA changes are the model's.
        ra = compute_flags(self.model, self.val_ra, attack=self.val_attack, seed=p.seed, **common)
        return {
            "val_ta": ta.ta,
            "val_n": len(self.val),
            # Clean accuracy on the RA subset too: RA <= this, and the gap is what the attack took.
            "val_ra_clean": ra.ta,
            "val_ra": ra.ra,
            "val_ra_n": len(self.val_ra),
            "val_seconds": ta.seconds + ra.seconds,
        }
