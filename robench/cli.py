"""The `robench` command line. It parses arguments and calls the workflow; nothing more.

Errors the user can fix (RobenchError) print one line and exit 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from robench import __version__
from robench.errors import RobenchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train and benchmark adversarially robust image classifiers (Chen et al., CVPR 2020).",
)
leaderboard_app = typer.Typer(no_args_is_help=True, help="Show leaderboard CSVs.")
app.add_typer(leaderboard_app, name="leaderboard")

console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

DataDir = Annotated[
    str | None,
    typer.Option("--data-dir", help="Data root (else $ROBENCH_DATA, else the user cache)."),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]


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
    _state["debug"] = debug


@app.command()
def train(
    suite: Annotated[str, typer.Argument(help="Suite TOML file, or a shipped suite's name.")],
    out: Annotated[Path, typer.Option(help="Directory that gets one folder per run.")],
    only: Annotated[list[str] | None, typer.Option(help="Train only these runs.")] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Train a suite's runs (resuming unfinished ones, skipping finished ones)."""
    from robench.config import load_suite
    from robench.workflow import train_suite

    loaded = load_suite(suite)
    paths = train_suite(loaded, out, only=only, device=device, console=console, data_dir=data_dir)
    console.print(f"trained {len(paths)} run(s) under {out}")


@app.command("eval")
def eval_(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to evaluate.")],
    suite: Annotated[str, typer.Option(help="Evaluation suite: pgd20.")] = "pgd20",
    leaderboard_dir: Annotated[Path, typer.Option(help="Where <suite>.csv goes.")] = Path(
        "leaderboards"
    ),
    n: Annotated[
        int | None, typer.Option(help="First n test images (default: run's eval_n or all).")
    ] = None,
    checkpoint: Annotated[
        str, typer.Option(help="best_ta (the paper's), best_ra or last.")
    ] = "best_ta",
    seed: Annotated[int, typer.Option(help="Seed of the attack's random start.")] = 0,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Evaluate trained runs and upsert one row per run into the suite's leaderboard."""
    from robench.runtime import Runtime
    from robench.workflow import evaluate_runs

    if n is not None and n < 1:
        raise RobenchError(f"--n must be >= 1, got {n}")
    evaluate_runs(
        run_dirs,
        suite,
        leaderboard_dir,
        runtime=Runtime.select(device),
        console=console,
        n=n,
        checkpoint=checkpoint,
        data_dir=data_dir,
        seed=seed,
    )


@app.command()
def reproduce(
    suite: Annotated[str, typer.Argument(help="Suite TOML file, or a shipped suite's name.")],
    out: Annotated[Path, typer.Option(help="Gets runs/ and leaderboards/.")],
    only: Annotated[list[str] | None, typer.Option(help="Only these runs.")] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Train every run of a suite, evaluate each, and write the leaderboards."""
    from robench.config import load_suite
    from robench.workflow import reproduce as run_reproduce

    boards = run_reproduce(
        load_suite(suite), out, only=only, device=device, console=console, data_dir=data_dir
    )
    console.print(f"leaderboards: {boards}")


@app.command()
def quickstart(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("robench-quickstart"),
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Reproduce suites/quick.toml (P1F3 vs P1F4 on CPU in minutes) and say where it went."""
    import time

    from robench.config import load_suite
    from robench.workflow import reproduce as run_reproduce

    start = time.perf_counter()
    boards = run_reproduce(
        load_suite("quick"), out, only=None, device=device, console=console, data_dir=data_dir
    )
    minutes = (time.perf_counter() - start) / 60
    console.print(
        f"\n[bold green]quickstart done[/bold green] in {minutes:.1f} min. Runs: {out / 'runs'}; "
        f"leaderboard: {boards / 'pgd20.csv'} (show it with "
        f"`robench leaderboard show {boards / 'pgd20.csv'}`)"
    )


@leaderboard_app.command("show")
def leaderboard_show(csv: Annotated[Path, typer.Argument(help="A leaderboard CSV.")]) -> None:
    """Print a leaderboard as a table."""
    from robench.leaderboard import board_table, read_board

    console.print(board_table(read_board(csv), str(csv)))


@app.command("list")
def list_(
    kind: Annotated[str, typer.Argument(help="models, attacks, suites or eval-suites.")],
) -> None:
    """List registered names."""
    if kind == "models":
        from robench.models import MODELS

        names = MODELS.names()
    elif kind == "attacks":
        from robench.attacks import ATTACKS

        names = ATTACKS.names()
    elif kind == "suites":
        from robench.config.suite import SUITES_DIR

        names = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
    elif kind == "eval-suites":
        from robench.eval.suites import EVAL_SUITES

        names = list(EVAL_SUITES)
    else:
        raise RobenchError(f"unknown kind {kind!r}; use models, attacks, suites or eval-suites")
    console.print("\n".join(names))


def main() -> None:
    """Entry point: typer handles usage errors (exit 2); robench's own errors become one line."""
    try:
        app()
    except RobenchError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
