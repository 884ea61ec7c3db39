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
    console.print(f"leaderboards: {boards}", soft_wrap=True)


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
        f"\n[bold green]quickstart done[/bold green] in {minutes:.1f} min.\n"
        f"  runs:         {out / 'runs'}\n"
        f"  leaderboards: {boards / 'pgd20.csv'}, {boards / 'table3.csv'}\n"
        f"  report:       {out / 'report.html'}\n"
        f"  show one:     robench leaderboard show {boards / 'table3.csv'}",
        soft_wrap=True,
    )


@app.command("transfer-matrix")
def transfer_matrix_(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories (2 or more).")],
    out: Annotated[Path, typer.Option(help="Gets the CSVs and PNGs.")],
    attack: Annotated[str, typer.Option(help="Evaluation suite whose attack is used.")] = "pgd20",
    n: Annotated[
        int | None, typer.Option(help="First n test images (default: runs' eval_n).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the attack's random start.")] = 0,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Attack success rates of each run's examples on every run, and their overlaps."""
    from robench.eval.suites import get_eval_suite
    from robench.runtime import Runtime
    from robench.workflow import transfer_analysis

    get_eval_suite(attack)
    if n is not None and n < 1:
        raise RobenchError(f"--n must be >= 1, got {n}")
    figures = transfer_analysis(
        run_dirs,
        out,
        out,
        runtime=Runtime.select(device),
        console=console,
        n=n,
        data_dir=data_dir,
        seed=seed,
        suite_name=attack,
    )
    console.print("figures:\n" + "\n".join(f"  {p}" for p in figures), soft_wrap=True)


@app.command()
def plot(
    csv: Annotated[Path, typer.Argument(help="A pgd20 leaderboard CSV.")],
    out: Annotated[Path, typer.Option(help="The PNG to write.")],
) -> None:
    """The paper's Figure 1: TA against RA, marker area = epochs to the best model."""
    from robench.leaderboard import PGD20, read_board
    from robench.report import plot_ta_ra

    board = read_board(csv, PGD20)
    if board.empty:
        raise RobenchError(f"{csv} has no rows to plot")
    console.print(f"wrote {plot_ta_ra(board, out)}", soft_wrap=True)


@leaderboard_app.command("show")
def leaderboard_show(csv: Annotated[Path, typer.Argument(help="A leaderboard CSV.")]) -> None:
    """Print a leaderboard as a table."""
    from robench.leaderboard import board_table, read_board
    from robench.leaderboard.table3 import table3_rich

    board = read_board(csv)
    console.print(
        table3_rich(board, str(csv)) if csv.stem == "table3" else board_table(board, str(csv))
    )


@leaderboard_app.command("validate")
def leaderboard_validate(
    csvs: Annotated[list[Path], typer.Argument(help="Leaderboard CSVs to check.")],
) -> None:
    """Check files against the leaderboard schema: exit 0 when all are valid, 1 otherwise."""
    from robench.leaderboard import validate_board

    failed = 0
    for csv in csvs:
        if not csv.is_file():
            raise RobenchError(f"leaderboard {csv} does not exist")
        schema, problems = validate_board(csv)
        name = schema.name if schema else "unknown"
        if problems:
            failed += 1
            console.print(f"[red]invalid[/red] {csv} ({name}): " + "; ".join(problems))
        else:
            console.print(f"[green]valid[/green] {csv} ({name})")
    if failed:
        raise typer.Exit(1)


@leaderboard_app.command("diff")
def leaderboard_diff(
    base: Annotated[Path, typer.Argument(help="The reference leaderboard.")],
    new: Annotated[Path, typer.Argument(help="The leaderboard to compare with it.")],
    tol: Annotated[float, typer.Option(help="Allowed |change| of a metric (pp).")] = 0.5,
    key: Annotated[
        list[str] | None, typer.Option(help="Match rows on these columns (default: schema key).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="rich or md.")] = "rich",
) -> None:
    """What moved: exit 0 within tolerance, 1 on a regression or lost row, 2 on bad input."""
    from robench.leaderboard.diff import diff_boards, diff_markdown, diff_tables, summary

    if fmt not in ("rich", "md"):
        raise RobenchError(f"--format must be rich or md, got {fmt!r}")
    result = diff_boards(base, new, tol=tol, key=tuple(key) if key else None)
    if fmt == "md":
        sys.stdout.write(diff_markdown(result))
    else:
        for table in diff_tables(result):
            console.print(table)
        style = "green" if result.ok else "red"
        console.print(f"[{style}]{summary(result)}[/{style}]", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@leaderboard_app.command("render")
def leaderboard_render(
    csv: Annotated[Path, typer.Argument(help="A leaderboard CSV.")],
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write here (md default: stdout).")] = None,
) -> None:
    """A leaderboard as a markdown table or a self-contained, sortable HTML page."""
    from robench.atomic import write_text_atomic
    from robench.leaderboard import read_board
    from robench.report.page import board_markdown, report_html

    board = read_board(csv)
    if fmt == "md":
        text = board_markdown(board, csv.stem)
    elif fmt == "html":
        text = report_html(f"robench leaderboard: {csv.name}", {csv.stem: board}, [])
        out = out or csv.with_suffix(".html")
    else:
        raise RobenchError(f"--format must be md or html, got {fmt!r}")
    if out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(out, text)
        console.print(f"wrote {out}")


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
