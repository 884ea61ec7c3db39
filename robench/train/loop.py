"""The inner epoch loop shared by fine-tuning and pretraining.

A step function does the work (attack, forward, backward, optimiser step) and hands back its
loss and correct-prediction count as device tensors; this loop accumulates them on the device,
syncs with the host only every few steps (for the progress bar and the divergence check), and
stops a run whose loss is no longer finite.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from rich.console import Console

from robench.data import BatchIterator
from robench.errors import RobenchError
from robench.progress import make_progress

SYNC_EVERY = 10  # steps between host syncs

# (x, y) -> (mean loss, number of correct predictions, number of predictions), all on device
StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, int]]


class DivergenceError(RobenchError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class EpochStats:
    loss: float
    accuracy: float  # percent of predictions that were correct (pretext or class)
    images: int
    seconds: float

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
) -> EpochStats:
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    predictions = seen = 0
    start = time.perf_counter()
    with make_progress(console) as progress:
        task = progress.add_task(
            f"{name} epoch {epoch}/{epochs}", total=batches.num_examples, rate=0.0, info=""
        )
        for index, (x, y) in enumerate(batches, 1):
            loss, n_correct, n_predictions = step(x, y)
            loss_sum += loss.detach() * len(y)
            correct += n_correct
            predictions += n_predictions
            seen += len(y)
            rate = seen / (time.perf_counter() - start)
            progress.update(task, completed=seen, rate=rate)  # host-side counts: no sync
            if index % SYNC_EVERY == 0 or index == len(batches):
                running = float(loss_sum) / seen  # the one device sync every SYNC_EVERY steps
                _check_finite(running, name, epoch, index)
                progress.update(task, info=f"loss {running:.3f}")
    seconds = time.perf_counter() - start
    mean_loss = float(loss_sum) / max(seen, 1)
    _check_finite(mean_loss, name, epoch, len(batches))
    return EpochStats(mean_loss, float(correct) / max(predictions, 1) * 100, seen, seconds)


def _check_finite(loss: float, name: str, epoch: int, step: int) -> None:
    if not math.isfinite(loss):
        raise DivergenceError(
            f"run {name} diverged: loss {loss} at epoch {epoch}, step {step}; "
            "the last good checkpoint is kept (lower the lr or check the data)"
        )
