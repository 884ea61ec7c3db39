"""The `robench` command line: common.py (app, consoles, options), commands.py (train, eval,
reproduce, quickstart, transfer-matrix), tools.py (plot, leaderboard, list, corruptions)."""

from __future__ import annotations

import sys

from robench.cli import commands as _commands  # noqa: F401  (registers the commands)
from robench.cli import tools as _tools  # noqa: F401
from robench.cli.common import app, console, err_console, state
from robench.errors import RobenchError


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); robench's own errors become one line.

    Under torchrun only rank 0 prints (progress, results and errors); the others run quietly
    and leave the process group at exit.
    """
    from robench import distributed

    rank = distributed.env_rank()
    console.quiet = rank != 0
    try:
        app()
    except RobenchError as exc:
        if state["debug"]:
            raise
        if rank == 0:
            err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    finally:
        distributed.shutdown()


__all__ = ["app", "main"]
