"""The Session: what every stage of one command shares, built once.

A session holds the runtime (device, fast path; selecting it joins the torchrun process group),
the console, where the data is, how often training checkpoints, and the output layout. The
command line (or a Python caller) builds one, then calls the stages in workflow.py with it;
no stage builds its own runtime or console.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.text import Text

from robench.config import RuntimeConfig, Suite
from robench.errors import RobenchError
from robench.runs import SuiteRef
from robench.runtime import Runtime
from robench.train.lifecycle import CHECKPOINT_EVERY, TrainEnv


@dataclass(frozen=True)
class Layout:
    """Where a reproduction's outputs go (`robench reproduce --out DIR`)."""

    root: Path

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def leaderboards(self) -> Path:
        return self.root / "leaderboards"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    @property
    def transfer(self) -> Path:
        return self.root / "transfer"

    @property
    def report(self) -> Path:
        return self.root / "report.html"


@dataclass(frozen=True)
class Session:
    runtime: Runtime
    console: Console = field(default_factory=Console)
    data_dir: str | None = None
    checkpoint_every: int = CHECKPOINT_EVERY
    log: tuple[str, ...] = ()  # training logs: tensorboard, wandb (robench.train.loggers)

    @classmethod
    def start(
        cls,
        device: str = "auto",
        *,
        console: Console | None = None,
        data_dir: str | None = None,
        checkpoint_every: int = CHECKPOINT_EVERY,
        runtime: RuntimeConfig | None = None,
        log: list[str] | tuple[str, ...] | None = None,
    ) -> Session:
        """A session on `device` with a suite's `[runtime]` settings (defaults without one);
        `log`: training logs beyond metrics.jsonl, checked here, before anything trains."""
        from robench.train.loggers import check_loggers

        if checkpoint_every < 0:
            raise RobenchError(f"--checkpoint-every must be >= 0, got {checkpoint_every}")
        logs = check_loggers(log)
        settings = runtime or RuntimeConfig()
        return cls(
            runtime=Runtime.select(
                device,
                amp=settings.amp,
                channels_last=settings.channels_last,
                compile=settings.compile,
            ),
            console=console or Console(),
            data_dir=data_dir,
            checkpoint_every=checkpoint_every,
            log=logs,
        )

    def warn(self, message: str) -> None:
        """A warning the user must see, printed as it is (never read as markup)."""
        self.console.print(Text(f"warning: {message}", style="yellow"))

    def train_env(self, suite: Suite | None = None) -> TrainEnv:
        ref = None if suite is None else SuiteRef(suite.name, suite.path, suite.sha256)
        return TrainEnv(
            runtime=self.runtime,
            console=self.console,
            data_dir=self.data_dir,
            checkpoint_every=self.checkpoint_every,
            suite=ref,
            log=self.log,
        )
