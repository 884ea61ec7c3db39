"""Training logs beyond metrics.jsonl: TensorBoard (and Weights & Biases, offline), optional.

`robench train --log tensorboard` writes, into the run directory's `tensorboard/` folder, the
per-step scalars (`train/loss`: the running mean of the epoch so far; `train/lr`;
`train/img_per_s`) at the loop's host syncs (every few steps: a scalar per step would sync
the GPU every step), and every numeric field of each epoch's metrics line as `epoch/<field>`
(`epoch/val_ta`, `epoch/val_ra`, `epoch/train_loss`, ...). A resumed run continues the same
steps: TensorBoard drops what the killed process logged after the checkpoint resumed from
(`purge_step`). `--log wandb` sends the same to a Weights & Biases run in offline mode
(`wandb sync` uploads it later), one per run directory, resumed with it.

metrics.jsonl stays the record; these are views of it for people following a run. Only rank 0
logs. A logger whose package is missing is one line naming the pip command, before training.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any, Protocol

from robench.errors import RobenchError

LOGGERS = {"tensorboard": "tensorboard", "wandb": "wandb"}  # name -> the package it needs


def check_loggers(names: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The loggers asked for, each known and importable; else a one-line error."""
    out: list[str] = []
    for name in names or ():
        if name not in LOGGERS:
            raise RobenchError(f"--log {name!r}: choose from {', '.join(LOGGERS)}")
        if importlib.util.find_spec(LOGGERS[name]) is None:
            raise RobenchError(
                f"--log {name} needs the {LOGGERS[name]} package: pip install 'robench[{name}]'"
            )
        if name not in out:
            out.append(name)
    return tuple(out)


class Logger(Protocol):
    def scalars(self, step: int, values: dict[str, float]) -> None: ...
    def close(self) -> None: ...


class TensorBoardLogger:
    def __init__(self, run_dir: Path, first_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=first_step or None)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, global_step=step)

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, run_dir: Path, name: str, config: dict[str, Any]) -> None:
        import wandb

        run_id = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(
            mode="offline", dir=str(run_dir), name=name, id=run_id, resume="allow", config=config
        )

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


class TrainLogs:
    """Every logger of one training run, fed by the lifecycle (rank 0 only).

    The loggers open at the first step logged, whose global step is then known: a resumed
    run's TensorBoard purges what a killed process wrote from that step on."""

    def __init__(self, names: tuple[str, ...], run_dir: Path, name: str, config: dict[str, Any]):
        self.names, self.run_dir, self.name, self.config = names, run_dir, name, config
        self.loggers: list[Logger] | None = None
        self.steps_per_epoch = 0

    def _open(self, first_step: int) -> list[Logger]:
        if self.loggers is None:
            self.loggers = []
            for logger in self.names:
                if logger == "tensorboard":
                    self.loggers.append(TensorBoardLogger(self.run_dir, first_step))
                elif logger == "wandb":
                    self.loggers.append(WandbLogger(self.run_dir, self.name, self.config))
        return self.loggers

    def step(self, epoch: int, step: int, steps: int, values: dict[str, float]) -> None:
        """Scalars at step `step` of `steps` in `epoch` (1-based)."""
        if not self.names:
            return
        self.steps_per_epoch = steps
        at = (epoch - 1) * steps + step
        for logger in self._open(at):
            logger.scalars(at, values)

    def epoch(self, epoch: int, record: dict[str, Any]) -> None:
        """Every numeric field of an epoch's metrics line, at the epoch's last step."""
        if not self.names:
            return
        values = {
            f"epoch/{k}": float(v)
            for k, v in record.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and k != "epoch"
        }
        at = epoch * self.steps_per_epoch
        for logger in self._open(at):
            logger.scalars(at, values)

    def close(self) -> None:
        for logger in self.loggers or []:
            logger.close()
