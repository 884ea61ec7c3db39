"""The one resumable-run lifecycle, shared by fine-tuning and every pretraining mode.

A run directory goes through the same steps whatever trains in it:

1. finished (result.json exists): check the recorded spec is the one asked for, skip;
2. set up the job (data, model, optimiser) and write its record (config.json);
3. resume from `last` (weights, optimiser, the job's own state such as the best epochs) and
   from a mid-epoch `partial` checkpoint of the next epoch; drop metrics logged after the
   last checkpoint (a crash between the two writes);
4. per epoch: the job's epoch (its step function inside `run_epoch`), a metrics line, the
   job's own checkpoints (best_ta / best_ra), `last`, and the partial one removed;
5. the job's final artefacts (a pretraining's trunk and task head), then result.json.

What differs between modes is a `TrainingJob` (finetune.py, pretrain.py). Under torchrun
every rank runs the lifecycle of a fine-tuning and only rank 0 writes; a pretraining runs on
rank 0 alone with a single-process context.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from rich.markup import escape
from torch import nn

from robench.config import PretrainSpec, RunSpec
from robench.data import DataSplits
from robench.distributed import DistContext
from robench.provenance import git_revision, now_iso, versions
from robench.runs import DataRecord, RunDir, RunRecord, SuiteRef
from robench.runs import checkpoint as ckpt
from robench.runs.lock import folder_lock
from robench.runs.metrics_log import append_metrics, read_metrics, truncate_metrics
from robench.runtime import Runtime
from robench.train.loggers import TrainLogs
from robench.train.loop import EpochProgress, SyncFn

CHECKPOINT_EVERY = 100  # steps between mid-epoch checkpoints; 0 = only at epoch ends
PRETRAIN_FOLDER = "pretrain"  # <out>/pretrain/<name>: the pretraining runs fine-tuning starts from


@dataclass(frozen=True)
class TrainEnv:
    """Where and how a training stage runs (the Session hands this down)."""

    runtime: Runtime
    console: Console
    data_dir: str | Path | None = None
    checkpoint_every: int = CHECKPOINT_EVERY
    suite: SuiteRef | None = None
    log: tuple[str, ...] = ()  # training logs beyond metrics.jsonl (train/loggers.py)


EpochFn = Callable[[EpochProgress], None]

# What this process last saved (run, epoch, step; step None = the epoch's end): what an
# interrupted command can point at when it says how to resume.
LAST_SAVED: dict[str, Any] = {}


class TrainingJob(Protocol):
    """One mode of training inside the lifecycle (see the module docstring)."""

    record: RunRecord  # what config.json says about the run
    module: nn.Module  # what the `last` and `partial` checkpoints hold
    optimizer: torch.optim.Optimizer
    epochs: int

    def restore(self, meta: dict[str, Any]) -> None:
        """Take back the job's own state from the `last` checkpoint's metadata."""

    def state_meta(self) -> dict[str, Any]:
        """The job's own state, saved with `last` and `partial` checkpoints."""

    def checkpoint_meta(self, epoch: int, record: dict[str, Any] | None) -> dict[str, Any]:
        """Metadata of the checkpoints of `epoch` (record: that epoch's metrics, if done)."""

    def run_epoch(
        self,
        epoch: int,
        resume_from: EpochProgress | None,
        checkpoint_every: int,
        on_checkpoint: EpochFn,
        on_sync: SyncFn | None = None,
    ) -> dict[str, Any]:
        """Train one epoch (and validate); the metrics line of that epoch. `on_sync`: see
        `robench.train.loop.run_epoch`."""

    def after_epoch(self, rd: RunDir, epoch: int, record: dict[str, Any], write: bool) -> None:
        """Track what the job tracks (best epochs) and, when `write`, save its checkpoints."""

    def finish(self, rd: RunDir, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Write the final artefacts; the fields of result.json."""

    def epoch_line(self, record: dict[str, Any]) -> str: ...


def run_lifecycle(
    rd: RunDir,
    spec: RunSpec | PretrainSpec,
    setup: Callable[[], TrainingJob],
    *,
    env: TrainEnv,
    ctx: DistContext,
) -> dict[str, Any]:
    """Train (or resume, or skip) the run `spec` in `rd`; its result.json fields.

    The run directory is locked meanwhile (rank 0): a second process gets one line.
    """
    with folder_lock(rd.path, "run directory", enabled=ctx.is_main):
        return _lifecycle(rd, spec, setup, env, ctx)


def _lifecycle(
    rd: RunDir,
    spec: RunSpec | PretrainSpec,
    setup: Callable[[], TrainingJob],
    env: TrainEnv,
    ctx: DistContext,
) -> dict[str, Any]:
    console = env.console
    rd.check_same(spec)
    if rd.is_finished():
        console.print(f"[dim]{spec.name}: already trained ({escape(str(rd.path))}), skipping[/dim]")
        return rd.read_result()
    job = setup()
    if ctx.is_main:
        rd.write_record(job.record)
    start_epoch = 0
    resumed = rd.resume(job.module, job.optimizer)
    if resumed is not None:
        job.restore(resumed)
        start_epoch = int(resumed["epoch"])
        console.print(f"{spec.name}: resuming after epoch {start_epoch}")
    resume_from = _resume_partial(rd, job, start_epoch, env.runtime.device)
    if resume_from is not None:
        console.print(
            f"{spec.name}: resuming epoch {start_epoch + 1} after step {resume_from.step}"
        )
        resume_from = resume_from.for_rank(ctx)
    ctx.barrier()  # every rank has read the checkpoints before rank 0 writes new ones
    if ctx.is_main:
        truncate_metrics(rd.metrics, start_epoch)

    logs = TrainLogs(env.log if ctx.is_main else (), rd.path, spec.name, job.record.to_json())
    try:
        return _train_epochs(rd, spec, job, env, ctx, start_epoch, resume_from, logs)
    finally:
        logs.close()


def _train_epochs(
    rd: RunDir,
    spec: RunSpec | PretrainSpec,
    job: TrainingJob,
    env: TrainEnv,
    ctx: DistContext,
    start_epoch: int,
    resume_from: EpochProgress | None,
    logs: TrainLogs,
) -> dict[str, Any]:
    console = env.console
    started = time.perf_counter()
    for epoch in range(start_epoch + 1, job.epochs + 1):

        def log_step(step: int, steps: int, loss: float, rate: float, epoch: int = epoch) -> None:
            lr = float(job.optimizer.param_groups[0]["lr"])
            logs.step(epoch, step, steps, {"train/loss": loss, "train/lr": lr,
                                           "train/img_per_s": rate})  # fmt: skip

        def save_partial(progress: EpochProgress, epoch: int = epoch) -> None:
            if ctx.is_main:
                state = {**_state(job), **progress.tensors()}
                meta = {**job.checkpoint_meta(epoch, None), **job.state_meta()}
                meta.update(epoch=epoch, progress=progress.meta())
                ckpt.save_checkpoint(rd.partial_checkpoint, state, meta)
                LAST_SAVED.update(run=spec.name, epoch=epoch, step=progress.step)

        record = job.run_epoch(epoch, resume_from, env.checkpoint_every, save_partial, log_step)
        resume_from = None
        if ctx.is_main:
            append_metrics(rd.metrics, record)
            logs.epoch(epoch, record)
        job.after_epoch(rd, epoch, record, write=ctx.is_main)
        if ctx.is_main:
            meta = {**job.checkpoint_meta(epoch, record), **job.state_meta()}
            ckpt.save_checkpoint(rd.checkpoint("last"), _state(job), meta)
            LAST_SAVED.update(run=spec.name, epoch=epoch, step=None)
            rd.drop_partial()
        console.print(job.epoch_line(record))

    if not ctx.is_main:
        ctx.barrier()  # rank 0 writes result.json; later runs may read this run's files
        return rd.read_result()
    result = job.finish(rd, read_metrics(rd.metrics))
    result.update(this_session_seconds=time.perf_counter() - started, finished=now_iso())
    rd.write_result(result)
    ctx.barrier()
    return result


def _state(job: TrainingJob) -> dict[str, torch.Tensor]:
    return {**ckpt.model_tensors(job.module), **ckpt.optimizer_tensors(job.optimizer, job.module)}


def _resume_partial(
    rd: RunDir, job: TrainingJob, completed: int, device: torch.device
) -> EpochProgress | None:
    found = rd.resume_partial(job.module, job.optimizer, completed)
    if found is None:
        return None
    tensors, meta = found
    return EpochProgress.restore(tensors, meta["progress"], device)


def data_record(splits: DataSplits, train: int, val: int, *, detailed: bool) -> DataRecord:
    """What a run trained on; `detailed` adds the source, root and classes (fine-tuning)."""
    extra = (
        {"source": splits.source, "root": splits.root, "classes": splits.train.classes}
        if detailed
        else {}
    )
    return DataRecord(
        dataset=splits.dataset,
        is_jpeg_copy=splits.is_jpeg_copy,
        content_hash=splits.content_hash,
        train=train,
        val=val,
        **extra,
    )


def runtime_section(
    runtime: Runtime, ctx: DistContext, *, sync_bn: bool, compiled: bool = True
) -> dict[str, Any]:
    """How this session trained: device, fast path, processes (a resume may use others).
    `compiled`: whether this kind of training compiles its forward when the runtime asks
    (fine-tuning does; the pretraining steps run eagerly)."""
    compile_ = runtime.compile and compiled
    return {
        "device": runtime.describe(),
        "amp": str(runtime.amp_dtype) if runtime.amp_dtype else None,
        "channels_last": runtime.channels_last,
        "compile": compile_,
        "compile_backend": runtime.compile_backend if compile_ else None,
        "world_size": ctx.world_size,
        "sync_bn": sync_bn,
    }


def provenance_sections() -> dict[str, Any]:
    return {"git_revision": git_revision(), "versions": versions(), "created": now_iso()}
