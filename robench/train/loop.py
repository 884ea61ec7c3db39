"""The inner epoch loop shared by fine-tuning and pretraining.

A step function does the work (attack, forward, backward, optimiser step) and hands back its
loss and correct-prediction count as device tensors; this loop accumulates them on the device,
syncs with the host only every few steps (for the progress bar and the divergence check), and
stops a run whose loss is no longer finite.

Every step's randomness (attack starts, pretext posing, dropout) comes from a seed of
(run seed, epoch, step), never from a stream that earlier steps advanced: a run stopped after
step k and resumed from a mid-epoch checkpoint takes exactly the steps it would have taken.

Under torchrun every rank iterates over the same global batches and its step works on its
slice; the sums each rank accumulates are its own, and are added up across ranks when a
checkpoint is saved and when the epoch ends, so every rank reports the global numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from rich.console import Console

from robench.data import BatchIterator
from robench.data.batches import epoch_seed
from robench.distributed import DistContext
from robench.errors import RobenchError
from robench.progress import make_progress

SYNC_EVERY = 10  # steps between host syncs
_STEP_STREAM = 7  # separates step seeds from the batch iterator's (seed, epoch, batch) seeds


@dataclass
class StepOutput:
    loss: torch.Tensor  # mean loss of the step, on device
    correct: torch.Tensor  # number of correct predictions, on device
    predictions: int
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # summed over steps
    examples: int | None = None  # images this rank's loss averages over (None: the batch)


# (x, y, generator for this step's randomness) -> StepOutput
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], StepOutput]
SyncFn = Callable[[int, int, float, float], None]  # (step, steps, running loss, img/s)


@dataclass
class EpochProgress:
    """What an epoch has accumulated so far: enough to resume it after a mid-epoch checkpoint."""

    step: int  # steps done
    loss_sum: torch.Tensor
    correct: torch.Tensor
    extras: dict[str, torch.Tensor]
    predictions: int = 0
    seen: int = 0
    seconds: float = 0.0

    @classmethod
    def empty(cls, device: torch.device) -> EpochProgress:
        zero = torch.zeros((), device=device)
        return cls(0, zero.clone(), zero.clone(), {})

    def tensors(self) -> dict[str, torch.Tensor]:
        """For a checkpoint: the device sums (kept exact, not rounded through JSON)."""
        out = {"progress/loss_sum": self.loss_sum, "progress/correct": self.correct}
        out.update({f"progress/extras/{k}": v for k, v in self.extras.items()})
        return {k: v.detach().float().reshape(()) for k, v in out.items()}

    def meta(self) -> dict[str, float | int]:
        return {
            "step": self.step,
            "predictions": self.predictions,
            "seen": self.seen,
            "seconds": self.seconds,
        }

    def reduced(self, ctx: DistContext) -> EpochProgress:
        """The progress of all ranks together (itself when alone): what a checkpoint keeps."""
        if not ctx.enabled:
            return self
        keys = sorted(self.extras)
        counts = torch.tensor([self.predictions, self.seen], device=self.loss_sum.device)
        flat = torch.cat(
            [
                torch.stack([self.loss_sum, self.correct, *(self.extras[k] for k in keys)])
                .double()
                .reshape(-1),
                counts.double(),
            ]
        )
        total = ctx.all_reduce_sum(flat)
        return EpochProgress(
            step=self.step,
            loss_sum=total[0].to(self.loss_sum.dtype),
            correct=total[1].to(self.correct.dtype),
            extras={k: total[2 + i].float() for i, k in enumerate(keys)},
            predictions=int(total[-2]),
            seen=int(total[-1]),
            seconds=self.seconds,
        )

    def for_rank(self, ctx: DistContext) -> EpochProgress:
        """This rank's share of saved (global) progress: all of it on rank 0, none elsewhere,
        so the sums added up at the end of the epoch count the resumed part once."""
        if ctx.is_main:
            return self
        zero = torch.zeros_like
        return EpochProgress(
            self.step,
            zero(self.loss_sum),
            zero(self.correct),
            {k: zero(v) for k, v in self.extras.items()},
            seconds=self.seconds,
        )

    @classmethod
    def restore(
        cls, tensors: dict[str, torch.Tensor], meta: dict, device: torch.device
    ) -> EpochProgress:
        prefix = "progress/extras/"
        return cls(
            step=int(meta["step"]),
            loss_sum=tensors["progress/loss_sum"].to(device),
            correct=tensors["progress/correct"].to(device),
            extras={
                k[len(prefix) :]: v.to(device) for k, v in tensors.items() if k.startswith(prefix)
            },
            predictions=int(meta["predictions"]),
            seen=int(meta["seen"]),
            seconds=float(meta["seconds"]),
        )


def step_seed(seed: int, epoch: int, step: int) -> int:
    return epoch_seed(seed, epoch, step, _STEP_STREAM)


class DivergenceError(RobenchError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class EpochStats:
    loss: float
    accuracy: float  # percent of predictions that were correct (pretext or class)
    images: int
    seconds: float
    extras: dict[str, float] = field(default_factory=dict)  # per-step means

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def run_epoch(
    batches: BatchIterator,
    step: StepFn,
    *,
    name: str,
    epoch: int,
    epochs: int,
    console: Console,
    device: torch.device,
    seed: int,
    resume_from: EpochProgress | None = None,
    checkpoint_every: int = 0,
    on_checkpoint: Callable[[EpochProgress], None] | None = None,
    dist_ctx: DistContext | None = None,
    on_sync: SyncFn | None = None,
) -> EpochStats:
    """One epoch of `step` over `batches`; every `checkpoint_every` steps, `on_checkpoint`.

    `resume_from` continues an epoch a mid-epoch checkpoint saved: its sums, from its step.
    `on_checkpoint` gets the progress of all ranks together, on every rank (it writes on rank
    0 only), and the returned statistics are the global ones on every rank. `on_sync(step,
    steps, running loss, img/s)` is called at each host sync (every SYNC_EVERY steps and at
    the last): what training logs record without syncing the GPU any more often.
    """
    ctx = dist_ctx or DistContext()
    state = resume_from or EpochProgress.empty(device)
    generator = torch.Generator(device=device)
    start = time.perf_counter() - state.seconds
    session_start, first_done = (
        time.perf_counter(),
        min(state.step * batches.batch_size, batches.num_examples),
    )
    with make_progress(console) as progress:
        task = progress.add_task(
            f"{name} epoch {epoch}/{epochs}",
            total=batches.num_examples,
            completed=first_done,
            rate=0.0,
            info="",
        )
        for index, (x, y) in enumerate(batches.iterate(state.step), state.step + 1):
            seed_now = step_seed(seed, epoch, index)
            generator.manual_seed(seed_now)
            torch.manual_seed(seed_now)  # dropout and anything else on the global stream
            out = step(x, y, generator)
            examples = len(y) if out.examples is None else out.examples
            state.loss_sum += out.loss.detach() * examples
            state.correct += out.correct
            for key, value in out.extras.items():
                state.extras[key] = state.extras.get(key, 0) + value.detach().float()
            state.predictions += out.predictions
            state.seen += examples
            state.step = index
            done = min(index * batches.batch_size, batches.num_examples)  # all ranks together
            rate = (done - first_done) / max(time.perf_counter() - session_start, 1e-9)
            progress.update(task, completed=done, rate=rate)  # host-side counts: no sync
            if index % SYNC_EVERY == 0 or index == len(batches):
                running = float(state.loss_sum) / max(state.seen, 1)  # one sync every SYNC_EVERY
                _check_finite(running, name, epoch, index)
                progress.update(task, info=f"loss {running:.3f}")
                if on_sync is not None:
                    on_sync(index, len(batches), running, rate)
            if (
                on_checkpoint is not None
                and checkpoint_every > 0
                and index % checkpoint_every == 0
                and index < len(batches)
            ):
                _check_finite(float(state.loss_sum), name, epoch, index)  # never save a NaN
                state.seconds = time.perf_counter() - start
                on_checkpoint(state.reduced(ctx))
    seconds = time.perf_counter() - start
    state = state.reduced(ctx)
    mean_loss = float(state.loss_sum) / max(state.seen, 1)
    _check_finite(mean_loss, name, epoch, len(batches))
    steps = max(state.step, 1) * ctx.world_size  # extras: per-step means, over ranks too
    return EpochStats(
        mean_loss,
        float(state.correct) / max(state.predictions, 1) * 100,
        state.seen,
        seconds,
        {k: float(v) / steps for k, v in state.extras.items()},
    )


def _check_finite(loss: float, name: str, epoch: int, step: int) -> None:
    if not math.isfinite(loss):
        raise DivergenceError(
            f"run {name} diverged: loss {loss} at epoch {epoch}, step {step}; "
            "the last good checkpoint is kept (lower the lr or check the data)"
        )
