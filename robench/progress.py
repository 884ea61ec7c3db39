"""The progress every long loop shows: a live rich bar in a terminal, plain lines elsewhere.

In a terminal: a bar with images/s, the running loss and the time left. Off a terminal (a
SLURM or CI log, `nohup`), a bar would print nothing until the loop ends, so a multi-hour
AutoAttack would be silent: there, each loop prints one line every `ROBENCH_PROGRESS_EVERY`
seconds (default 30; 0 for none) with done/total, img/s and the ETA. A loop that ends sooner
prints none; the per-epoch and per-evaluation summaries are printed either way.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from robench.errors import ConfigError

EVERY_ENV = "ROBENCH_PROGRESS_EVERY"
DEFAULT_EVERY_S = 30.0


def progress_every() -> float:
    """Seconds between progress lines off a terminal (`ROBENCH_PROGRESS_EVERY`)."""
    value = os.environ.get(EVERY_ENV, "")
    if value == "":
        return DEFAULT_EVERY_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigError(f"{EVERY_ENV}={value!r} must be a number of seconds >= 0 (0: none)")
    return seconds


def make_progress(console: Console) -> Progress | LineProgress:
    """A live bar in a terminal, timed plain lines anywhere else."""
    if not console.is_terminal:
        return LineProgress(console, progress_every())
    return Progress(
        TextColumn("{task.description}", markup=False, style="bold"),  # names are not markup
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>7.0f} img/s"),
        TextColumn("{task.fields[info]}", markup=False),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@dataclass
class _Task:
    description: str
    total: float
    completed: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=lambda: time.monotonic())
    first: float = 0.0  # completed when the task began (a resumed loop starts part-way)
    last_line: float = field(default_factory=lambda: time.monotonic())


class LineProgress:
    """The part of rich's Progress API the loops use, printing a line every `every` seconds."""

    def __init__(self, console: Console, every: float) -> None:
        self.console = console
        self.every = every
        self.tasks: list[_Task] = []

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def add_task(self, description: str, total: float, completed: float = 0, **fields: Any) -> int:
        self.tasks.append(_Task(description, total, completed, fields, first=completed))
        return len(self.tasks) - 1

    def update(self, task_id: int, completed: float | None = None, **fields: Any) -> None:
        task = self.tasks[task_id]
        if completed is not None:
            task.completed = completed
        task.fields.update(fields)
        now = time.monotonic()
        if self.every > 0 and now - task.last_line >= self.every and task.completed < task.total:
            task.last_line = now
            self.console.print(Text(self.line(task, now)), soft_wrap=True)

    @staticmethod
    def line(task: _Task, now: float) -> str:
        """`label: done/total (p%), R img/s, ETA h:mm:ss[, info]` (the ETA from this run's rate)."""
        elapsed = max(now - task.started, 1e-9)
        rate = (task.completed - task.first) / elapsed
        left = (task.total - task.completed) / rate if rate > 0 else float("inf")
        percent = 100 * task.completed / task.total if task.total else 100.0
        parts = [
            f"{task.description}: {task.completed:.0f}/{task.total:.0f} ({percent:.0f}%)",
            f"{rate:.0f} img/s",
            f"ETA {_clock(left)}",
        ]
        info = str(task.fields.get("info", "") or "")
        return ", ".join(parts + ([info] if info else []))


def _clock(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
