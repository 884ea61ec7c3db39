"""The `robench` command line: common.py (app, consoles, options), commands.py (train, eval,
quickstart, transfer-matrix), launch.py (reproduce, status, job), analysis.py (compare,
claims), share.py (export, push), tools.py (plot, leaderboard, list, corruptions), zoo.py
(leaderboard robustbench)."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from rich.markup import escape

from robench.cli import analysis as _analysis  # noqa: F401  (registers the commands)
from robench.cli import commands as _commands  # noqa: F401
from robench.cli import launch as _launch  # noqa: F401
from robench.cli import share as _share  # noqa: F401
from robench.cli import tools as _tools  # noqa: F401
from robench.cli import zoo as _zoo  # noqa: F401
from robench.cli.common import app, console, err_console, state
from robench.errors import RobenchError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM: a BaseException, so click's own Ctrl-C handling does not swallow it
    and only `finally` blocks (temporary files, the process group) run on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def interrupted_line() -> str:
    """What to do after an interruption, and where training will pick up."""
    from robench.train.lifecycle import LAST_SAVED

    if LAST_SAVED:
        step = "its end" if LAST_SAVED["step"] is None else f"step {LAST_SAVED['step']}"
        where = f"last checkpoint: {LAST_SAVED['run']} epoch {LAST_SAVED['epoch']}, {step}"
    else:
        where = "finished runs and stored flags are kept"
    return f"interrupted; rerun the same command to resume ({where})"


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); robench's own errors become one line.

    Under torchrun only rank 0 prints (progress, results and errors); the others run quietly
    and leave the process group at exit. SIGINT and SIGTERM print one line and exit 130 / 143.
    """
    from robench import distributed

    rank = distributed.env_rank()
    console.quiet = rank != 0
    previous = {signum: signal.signal(signum, _interrupt) for signum in SIGNALS}
    try:
        app()
    except Interrupted as exc:
        if rank == 0:
            err_console.print(escape(interrupted_line()), highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except RobenchError as exc:
        if state["debug"]:
            raise
        if rank == 0:
            message = escape(str(exc))  # user text (paths, names) is never markup
            err_console.print(
                f"[bold red]error:[/bold red] {message}", highlight=False, soft_wrap=True
            )
        sys.exit(2)
    finally:
        distributed.shutdown()
        for signum, handler in previous.items():  # a caller's (pytest's) handlers come back
            signal.signal(signum, handler)


__all__ = ["app", "main"]
