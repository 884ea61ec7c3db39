"""The inner epoch loop shared by fine-tuning and pretraining.

A step function does the work (attack, forward, backward, optimiser step) and hands back its
loss and correct-prediction count as device tensors; this loop accumulates them on the device,
syncs with the host only every few steps (for the progress bar and the divergence check), and
stops a run whose loss is no longer finite.

Every step's randomness (attack starts, pretext posing, dropout) comes from a seed of
(run seed, epoch, step), never from a stream that earlier steps advanced: a run stopped after
step k and resumed from a mid-epoch checkpoint takes exactly the steps it would have taken.
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


# (x, y, generator for this step's randomness) -> StepOutput
StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], StepOutput]


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
) -> EpochStats:
    """One epoch of `step` over `batches`; every `checkpoint_every` steps, `on_checkpoint`.

    `resume_from` continues an epoch a mid-epoch checkpoint saved: its sums, from its step.
    """
    state = resume_from or EpochProgress.empty(device)
    generator = torch.Generator(device=device)
    start = time.perf_counter() - state.seconds
    with make_progress(console) as progress:
        task = progress.add_task(
            f"{name} epoch {epoch}/{epochs}",
            total=batches.num_examples,
            completed=state.seen,
            rate=0.0,
            info="",
        )
        for index, (x, y) in enumerate(batches.iterate(state.step), state.step + 1):
            seed_now = step_seed(seed, epoch, index)
            generator.manual_seed(seed_now)
            torch.manual_seed(seed_now)  # dropout and anything else on the global stream
            out = step(x, y, generator)
            state.loss_sum += out.loss.detach() * len(y)
            state.correct += out.correct
            for key, value in out.extras.items():
                state.extras[key] = state.extras.get(key, 0) + value.detach().float()
            state.predictions += out.predictions
            state.seen += len(y)
            state.step = index
            rate = state.seen / (time.perf_counter() - start)
            progress.update(task, completed=state.seen, rate=rate)  # host-side counts: no sync
            if index % SYNC_EVERY == 0 or index == len(batches):
                running = float(state.loss_sum) / state.seen  # the one sync every SYNC_EVERY
                _check_finite(running, name, epoch, index)
                progress.update(task, info=f"loss {running:.3f}")
            if (
                on_checkpoint is not None
                and checkpoint_every > 0
                and index % checkpoint_every == 0
                and index < len(batches)
            ):
                _check_finite(float(state.loss_sum), name, epoch, index)  # never save a NaN
                state.seconds = time.perf_counter() - start
                on_checkpoint(state)
    seconds = time.perf_counter() - start
    mean_loss = float(state.loss_sum) / max(state.seen, 1)
    _check_finite(mean_loss, name, epoch, len(batches))
    steps = max(state.step, 1)
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
