"""What every `robench` command shares: the app, the consoles, option types, the session.

The command line parses arguments and calls the library; nothing more. Errors the user can
fix (RobenchError) print one line and exit 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from robench import __version__

if TYPE_CHECKING:
    from robench.config import Suite
    from robench.session import Session

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train and benchmark adversarially robust image classifiers (Chen et al., CVPR 2020).",
)
leaderboard_app = typer.Typer(no_args_is_help=True, help="Show leaderboard CSVs.")
app.add_typer(leaderboard_app, name="leaderboard")
corruptions_app = typer.Typer(no_args_is_help=True, help="CIFAR-10-C corruptions.")
app.add_typer(corruptions_app, name="corruptions")

console = Console()
err_console = Console(stderr=True)
state = {"debug": False}

DataDir = Annotated[
    str | None,
    typer.Option("--data-dir", help="Data root (else $ROBENCH_DATA, else the user cache)."),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
Precision = Annotated[
    str,
    typer.Option(
        help="Evaluation arithmetic: fp32 (default; published numbers are fp32) or bf16 "
        "(autocast). Training keeps the suite's [runtime] setting."
    ),
]
CheckpointEvery = Annotated[
    int, typer.Option(help="Steps between mid-epoch checkpoints (0: at epoch ends only).")
]
Log = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="Training logs beyond metrics.jsonl: tensorboard (into the run directory) or "
        "wandb (offline); repeatable.",
    ),
]


def session_for(
    device: str,
    data_dir: str | None,
    checkpoint_every: int = 100,
    suite: Suite | None = None,
    log: list[str] | None = None,
) -> Session:
    from robench.session import Session

    runtime = None if suite is None else suite.runtime
    return Session.start(
        device,
        console=console,
        data_dir=data_dir,
        checkpoint_every=checkpoint_every,
        runtime=runtime,
        log=log,
    )


def _version(value: bool) -> None:
    if value:
        console.print(f"robench {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print version.")
    ] = False,
) -> None:
    state["debug"] = debug
