"""Standard (ST) and adversarial (AT) training of a classifier, with validation every epoch.

One epoch: shuffle and augment on the device, craft PGD examples if the run is adversarial,
take an SGD step, then measure validation TA and RA. The best-TA checkpoint is the paper's
model selection; the best-RA one is kept too, and `epochs_to_best` records when each was
reached. Everything that makes an epoch (data order, augmentation, attack starts) is seeded
from (seed, epoch), so a run killed after epoch k and rerun continues exactly as if it had
never stopped.

Under torchrun (see `robench.distributed`) every rank holds the same data and model, trains
on its contiguous slice of each global batch under DistributedDataParallel with BatchNorm over
the global batch (`sync_bn`), validates a share of the validation batches, and reduces the
metrics, so each rank has the numbers one process would have; only rank 0 writes the run
directory. A mid-epoch checkpoint holds the global running sums, so it resumes under any
number of processes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console

from robench.atomic import write_json_atomic
from robench.attacks.factory import pgd_from_config
from robench.config import RunSpec, Suite
from robench.data import BatchIterator, DataSplits, make_splits
from robench.distributed import DistContext, current
from robench.errors import ConfigError, RobenchError
from robench.eval.accuracy import correct_flags
from robench.models import Classifier, create
from robench.provenance import git_revision, now_iso, versions
from robench.runtime import Runtime
from robench.train import checkpoint as ckpt
from robench.train import ddp
from robench.train.loop import DivergenceError, EpochProgress, StepOutput, run_epoch
from robench.train.metrics_log import append_metrics, read_metrics, truncate_metrics
from robench.train.rotation_aux import RotationAuxiliaryObjective, attach_rotation_head
from robench.train.run_dir import RunDir, suite_provenance
from robench.train.schedule import lr_at_epoch, make_optimizer, set_lr
from robench.train.transfer import file_sha256, freeze, load_trunk

PRETRAIN_FOLDER = "pretrain"  # <out>/pretrain/<name>: the pretraining runs fine-tuning starts from

CHECKPOINT_EVERY = 100  # steps between mid-epoch checkpoints; 0 = only at epoch ends

__all__ = ["CHECKPOINT_EVERY", "PRETRAIN_FOLDER", "DivergenceError", "train_run"]


@dataclasses.dataclass
class BestSoFar:
    ta: float = -1.0
    ta_epoch: int = 0
    ra: float = -1.0
    ra_epoch: int = 0


def train_run(
    run: RunSpec,
    out_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    suite: Suite | None = None,
    data_dir: str | Path | None = None,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> dict[str, Any]:
    """Train `run` into `out_dir/<run.name>`; resume or skip work already on disk.

    A run with pretraining starts from the trunk of `out_dir/pretrain/<pretraining name>`.
    Besides the per-epoch checkpoints, the state is saved every `checkpoint_every` steps, so a
    killed run loses at most that many steps.
    """
    ctx = current()
    rd = RunDir(out_dir / run.name)
    if rd.is_finished():
        rd.check_same("run", run.to_dict())
        console.print(f"[dim]{run.name}: already trained ({rd.path}), skipping[/dim]")
        return rd.read_result()
    p = run.protocol
    splits = make_splits(
        p.data,
        data_dir,
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
    inherited = _inherit_trunk(run, model, out_dir)
    if run.frozen_trunk:
        freeze(model.trunk)
    if ctx.enabled and p.sync_bn:
        ddp.convert_batchnorm(model, runtime.device)
    runtime.prepare(model)
    config = _resolved_config(run, suite, splits, runtime, ctx)
    config["inherited_trunk"] = inherited
    rd.check_same("run", run.to_dict())
    if ctx.is_main:
        rd.path.mkdir(parents=True, exist_ok=True)
        write_json_atomic(rd.config, config)

    optimizer = make_optimizer(
        list(model.parameters()),
        lr=p.lr,
        momentum=p.momentum,
        weight_decay=p.weight_decay,
        device=runtime.device,
    )
    best, start_epoch = BestSoFar(), 0
    resumed = rd.resume(model, optimizer)
    if resumed is not None:
        best, start_epoch = BestSoFar(**resumed["best"]), int(resumed["epoch"])
        console.print(f"{run.name}: resuming after epoch {start_epoch}")
    resume_from = rd.resume_partial(model, optimizer, start_epoch, runtime.device)
    if resume_from is not None:
        console.print(f"{run.name}: resuming epoch {start_epoch + 1} after step {resume_from.step}")
        resume_from = resume_from.for_rank(ctx)
    ctx.barrier()  # every rank has read the checkpoints before rank 0 writes new ones
    if ctx.is_main:
        truncate_metrics(rd.metrics, start_epoch)

    trainer = _EpochTrainer(run, model, optimizer, splits, runtime, console, ctx)
    started = time.perf_counter()
    for epoch in range(start_epoch + 1, p.epochs + 1):

        def save_partial(progress: EpochProgress, epoch: int = epoch) -> None:
            if not ctx.is_main:
                return
            state = {
                **ckpt.model_tensors(model),
                **ckpt.optimizer_tensors(optimizer, model),
                **progress.tensors(),
            }
            meta = {
                "architecture": p.model,
                "run": run.name,
                "epoch": epoch,
                "progress": progress.meta(),
                "best": dataclasses.asdict(best),
            }
            ckpt.save_checkpoint(rd.partial_checkpoint, state, meta)

        record = trainer.run_epoch(epoch, resume_from, checkpoint_every, save_partial)
        resume_from = None
        # Every rank has the same (reduced) record, so every rank tracks the same best.
        meta = _checkpoint_meta(run, config, epoch, record)
        new_ta = record["val_ta"] > best.ta
        new_ra = record["val_ra"] is not None and record["val_ra"] > best.ra
        if new_ta:
            best.ta, best.ta_epoch = record["val_ta"], epoch
        if new_ra:
            best.ra, best.ra_epoch = record["val_ra"], epoch
        if ctx.is_main:
            append_metrics(rd.metrics, record)
            if new_ta:
                ckpt.save_checkpoint(rd.checkpoint("best_ta"), ckpt.model_tensors(model), meta)
            if new_ra:
                ckpt.save_checkpoint(rd.checkpoint("best_ra"), ckpt.model_tensors(model), meta)
            state = {**ckpt.model_tensors(model), **ckpt.optimizer_tensors(optimizer, model)}
            ckpt.save_checkpoint(
                rd.checkpoint("last"), state, {**meta, "best": dataclasses.asdict(best)}
            )
            rd.drop_partial()
        console.print(_epoch_line(run.name, record))

    if not ctx.is_main:
        ctx.barrier()  # rank 0 writes result.json; later runs may read this run's files
        return rd.read_result()
    history = read_metrics(rd.metrics)
    result = {
        "run": run.name,
        "scenario": run.scenario,
        "pretext": run.pretext,
        "epochs": p.epochs,
        "best_val_ta": best.ta,
        "epochs_to_best": best.ta_epoch,
        "best_val_ra": best.ra,
        "epochs_to_best_ra": best.ra_epoch,
        "train_seconds": sum(r["seconds"] for r in history),
        "this_session_seconds": time.perf_counter() - started,
        "finished": now_iso(),
    }
    write_json_atomic(rd.result, result)
    ctx.barrier()
    return result


class _EpochTrainer:
    """One epoch of training plus validation; holds what stays fixed across epochs."""

    def __init__(
        self,
        run: RunSpec,
        model: Classifier,
        optimizer: torch.optim.Optimizer,
        splits: DataSplits,
        runtime: Runtime,
        console: Console,
        ctx: DistContext,
    ) -> None:
        p = run.protocol
        self.run = run
        self.model = model
        self.optimizer = optimizer
        self.runtime = runtime
        self.console = console
        self.ctx = ctx
        # Attacks and validation run the bare model (eval-mode BatchNorm needs no other rank);
        # the training forward runs under DDP, whose backward averages the ranks' gradients.
        self.forward = runtime.maybe_compile(model)
        self.train_forward = (
            runtime.maybe_compile(ddp.wrap(model, ctx, runtime.device))
            if ctx.enabled
            else self.forward
        )
        self.train_batches = BatchIterator(
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
        self.train_attack = pgd_from_config(p.train_attack, runtime) if run.adversarial else None
        self.val_attack = pgd_from_config(p.val_attack, runtime)
        if p.auxiliary is not None and ctx.enabled:
            # Its joint forward bypasses the DDP wrapper, so gradients would not be averaged.
            raise ConfigError(
                f"{run.name}: the rotation-auxiliary baseline trains in one process, not under "
                "torchrun"
            )
        self.rotation_aux = (
            RotationAuxiliaryObjective(model, self.train_attack, p.auxiliary_weight, runtime)
            if p.auxiliary == "rotation"
            else None
        )

    def run_epoch(
        self,
        epoch: int,
        resume_from: EpochProgress | None = None,
        checkpoint_every: int = 0,
        on_checkpoint: Callable[[EpochProgress], None] | None = None,
    ) -> dict[str, Any]:
        p = self.run.protocol
        lr = lr_at_epoch(p, epoch)
        set_lr(self.optimizer, lr)
        self.train_batches.set_epoch(epoch)
        self.model.train()
        if self.run.frozen_trunk:
            self.model.trunk.eval()  # frozen BatchNorm statistics: the trunk stays bit-identical

        ctx = self.ctx

        def step(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> StepOutput:
            if self.rotation_aux is not None:  # one process (refused under torchrun)
                loss, logits = self.rotation_aux.loss(x, y, generator)
                mean_loss = loss
            else:
                # This rank's contiguous slice of the global batch (all of it when alone).
                shard = ctx.shard(len(y))
                if ctx.enabled:
                    x, y = shard.take(x), shard.take(y)
                if self.train_attack is not None:
                    x = self.train_attack.perturb(
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

        stats = run_epoch(
            self.train_batches,
            step,
            name=self.run.name,
            epoch=epoch,
            epochs=p.epochs,
            console=self.console,
            device=self.runtime.device,
            seed=p.seed,
            resume_from=resume_from,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
            dist_ctx=self.ctx,
        )
        val = self._validate(epoch)
        return {
            "epoch": epoch,
            "lr": lr,
            "train_loss": stats.loss,
            "train_acc": stats.accuracy,
            "train_images_per_s": stats.images_per_s,
            **val,
            "seconds": stats.seconds + val["val_seconds"],
        }

    def _validate(self, epoch: int) -> dict[str, Any]:
        p = self.run.protocol
        ta = correct_flags(self.model, self.val, self.runtime, p.eval_batch_size, dist_ctx=self.ctx)
        # A fixed attack seed every epoch, so epoch-to-epoch RA changes are the model's.
        ra = correct_flags(
            self.model,
            self.val_ra,
            self.runtime,
            p.eval_batch_size,
            self.val_attack,
            seed=p.seed,
            dist_ctx=self.ctx,
        )
        return {
            "val_ta": ta.ta,
            "val_n": len(self.val),
            # Clean accuracy on the RA subset too: RA <= this, and the gap is what the attack took.
            "val_ra_clean": ra.ta,
            "val_ra": ra.ra,
            "val_ra_n": len(self.val_ra),
            "val_seconds": ta.seconds + ra.seconds,
        }


def _inherit_trunk(run: RunSpec, model: Classifier, out_dir: Path) -> dict[str, Any] | None:
    if run.pretraining is None:
        return None
    source = RunDir(out_dir / PRETRAIN_FOLDER / run.pretraining.name)
    if not source.is_finished():
        raise RobenchError(
            f"run {run.name} starts from pretraining {run.pretraining.name!r}, which has not "
            f"finished under {source.path}; `robench train` trains it first when the suite "
            "names it"
        )
    stem = source.path / "trunk"
    meta = load_trunk(model, stem)
    return {
        "pretraining": run.pretraining.name,
        "path": str(source.path),
        "trunk_sha256": file_sha256(stem.with_suffix(".safetensors")),
        "pretext": meta.get("pretext"),
        "epoch": meta.get("epoch"),
    }


def _resolved_config(
    run: RunSpec, suite: Suite | None, splits: DataSplits, runtime: Runtime, ctx: DistContext
) -> dict:
    return {
        "run": run.to_dict(),
        "suite": suite_provenance(suite),
        "data": {
            "dataset": splits.dataset,
            "is_jpeg_copy": splits.is_jpeg_copy,
            "source": splits.source,
            "root": splits.root,
            "content_hash": splits.content_hash,
            "train": len(splits.train),
            "val": len(splits.val),
            "classes": list(splits.train.classes),
        },
        "runtime": {
            "device": runtime.describe(),
            "amp": str(runtime.amp_dtype) if runtime.amp_dtype else None,
            "channels_last": runtime.channels_last,
            "compile": runtime.compile,
            # Processes this session trained with (a resumed run may have used others).
            "world_size": ctx.world_size,
            "sync_bn": ctx.enabled and run.protocol.sync_bn,
        },
        "attack_bn_mode": run.protocol.train_attack.bn_mode,
        "git_revision": git_revision(),
        "versions": versions(),
        "created": now_iso(),
    }


def _checkpoint_meta(run: RunSpec, config: dict, epoch: int, record: dict) -> dict[str, Any]:
    return {
        "architecture": run.protocol.model,
        "num_classes": len(config["data"]["classes"]),
        "pretext": run.pretext,
        "scenario": run.scenario,
        "run": run.name,
        "epoch": epoch,
        "val_ta": record["val_ta"],
        "val_ra": record["val_ra"],
        "dataset": config["data"]["dataset"],
        "attack_bn_mode": run.protocol.train_attack.bn_mode,
        "auxiliary": run.protocol.auxiliary,
    }


def _epoch_line(name: str, r: dict[str, Any]) -> str:
    ra = "-" if r["val_ra"] is None else f"{r['val_ra']:.2f}"
    return (
        f"{name} epoch {r['epoch']:>3}  lr {r['lr']:.4g}  loss {r['train_loss']:.4f}  "
        f"val TA {r['val_ta']:.2f}  val RA {ra}  {r['train_images_per_s']:.0f} img/s  "
        f"{r['seconds']:.1f}s"
    )
