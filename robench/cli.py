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
corruptions_app = typer.Typer(no_args_is_help=True, help="CIFAR-10-C corruptions.")
app.add_typer(corruptions_app, name="corruptions")

console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

DataDir = Annotated[
    str | None,
    typer.Option("--data-dir", help="Data root (else $ROBENCH_DATA, else the user cache)."),
]
Device = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
CheckpointEvery = Annotated[
    int, typer.Option(help="Steps between mid-epoch checkpoints (0: at epoch ends only).")
]


def _check_checkpoint_every(value: int) -> None:
    if value < 0:
        raise RobenchError(f"--checkpoint-every must be >= 0, got {value}")


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
    checkpoint_every: CheckpointEvery = 100,
) -> None:
    """Train a suite's runs (resuming unfinished ones, skipping finished ones)."""
    from robench.config import load_suite
    from robench.workflow import train_suite

    _check_checkpoint_every(checkpoint_every)
    loaded = load_suite(suite)
    paths = train_suite(
        loaded,
        out,
        only=only,
        device=device,
        console=console,
        data_dir=data_dir,
        checkpoint_every=checkpoint_every,
    )
    console.print(f"trained {len(paths)} run(s) under {out}")


@app.command("eval")
def eval_(
    run_dirs: Annotated[
        list[Path] | None, typer.Argument(help="Run directories to evaluate.")
    ] = None,
    suite: Annotated[
        str, typer.Option(help="pgd20, autoattack, unforeseen, corruptions or all.")
    ] = "pgd20",
    leaderboard_dir: Annotated[Path, typer.Option(help="Where <suite>.csv goes.")] = Path(
        "leaderboards"
    ),
    n: Annotated[
        int | None, typer.Option(help="First n test images (default: run's eval_n or all).")
    ] = None,
    checkpoint: Annotated[
        str, typer.Option(help="best_ta (the paper's), best_ra or last.")
    ] = "best_ta",
    seed: Annotated[int, typer.Option(help="Seed of the attacks' random starts.")] = 0,
    ensemble: Annotated[
        bool, typer.Option(help="Evaluate the runs as one softmax-averaging ensemble.")
    ] = False,
    name: Annotated[
        str | None, typer.Option(help="Row name for an ensemble or an external model.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Your own model: FILE.py:FACTORY (with --weights).")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="State dict for --model (.pt/.pth or .safetensors).")
    ] = None,
    data: Annotated[str, typer.Option(help="Data source for --model.")] = "cifar10",
    eps: Annotated[str | None, typer.Option(help="Override the attack eps, e.g. 4/255.")] = None,
    steps: Annotated[int | None, typer.Option(help="Override the attack steps.")] = None,
    step_size: Annotated[
        str | None, typer.Option(help="Override the PGD step size, e.g. 1/255.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Evaluation batch size.")] = None,
    corruptions_dir: Annotated[
        Path | None, typer.Option(help="Official CIFAR-10-C folder (default: generate).")
    ] = None,
    allow_randomized: Annotated[
        bool, typer.Option(help="Evaluate a randomised model anyway (flagged).")
    ] = False,
    allow_training_mode: Annotated[
        bool, typer.Option(help="Evaluate a model stuck in training mode anyway (flagged).")
    ] = False,
    data_dir: DataDir = None,
    device: Device = "auto",
) -> None:
    """Evaluate runs, an ensemble of runs, or your own model; upsert rows into the boards."""
    from robench.eval.runner import EvalOptions
    from robench.eval.suites import Overrides, expand_suites
    from robench.eval.targets import ensemble_target, external_target, run_target
    from robench.runtime import Runtime
    from robench.workflow import evaluate_targets

    run_dirs = run_dirs or []
    expand_suites(suite)
    if n is not None and n < 1:
        raise RobenchError(f"--n must be >= 1, got {n}")
    if batch_size is not None and batch_size < 1:
        raise RobenchError(f"--batch-size must be >= 1, got {batch_size}")
    if (model is None) != (weights is None):
        raise RobenchError("--model FILE.py:FACTORY and --weights FILE go together")
    if model is None and not run_dirs:
        raise RobenchError("give run directories to evaluate, or --model and --weights")
    if model is not None and run_dirs:
        raise RobenchError("evaluate either run directories or one --model, not both")
    if ensemble and len(run_dirs) < 2:
        raise RobenchError("--ensemble needs at least two run directories")
    if corruptions_dir is not None and not corruptions_dir.is_dir():
        raise RobenchError(f"--corruptions-dir {corruptions_dir} is not a directory")
    options = EvalOptions(
        seed=seed,
        overrides=Overrides(eps=eps, steps=steps, step_size=step_size),
        corruptions_dir=corruptions_dir,
        allow_randomized=allow_randomized,
        allow_training_mode=allow_training_mode,
        batch_size=batch_size,
    )
    state_root = leaderboard_dir / ".eval-state"
    if model is not None:
        assert weights is not None
        targets = [
            external_target(
                model,
                weights,
                data=data,
                data_dir=data_dir,
                n=n,
                name=name,
                state_root=state_root,
            )
        ]
    elif ensemble:
        targets = [
            ensemble_target(
                run_dirs,
                name=name,
                checkpoint=checkpoint,
                data_dir=data_dir,
                n=n,
                state_root=state_root,
            )
        ]
    else:
        targets = (run_target(p, checkpoint=checkpoint, data_dir=data_dir, n=n) for p in run_dirs)
    evaluate_targets(
        targets,
        suite,
        leaderboard_dir,
        runtime=Runtime.select(device),
        console=console,
        options=options,
    )


@app.command()
def reproduce(
    suite: Annotated[str, typer.Argument(help="Suite TOML file, or a shipped suite's name.")],
    out: Annotated[Path, typer.Option(help="Gets runs/ and leaderboards/.")],
    only: Annotated[list[str] | None, typer.Option(help="Only these runs.")] = None,
    data_dir: DataDir = None,
    device: Device = "auto",
    checkpoint_every: CheckpointEvery = 100,
) -> None:
    """Train every run of a suite, evaluate each, and write the leaderboards."""
    from robench.config import load_suite
    from robench.workflow import reproduce as run_reproduce

    _check_checkpoint_every(checkpoint_every)
    boards = run_reproduce(
        load_suite(suite),
        out,
        only=only,
        device=device,
        console=console,
        data_dir=data_dir,
        checkpoint_every=checkpoint_every,
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
    from robench.distributed import current
    from robench.eval.suites import get_eval_suite
    from robench.runtime import Runtime
    from robench.workflow import transfer_analysis

    if get_eval_suite(attack).attack is None:
        raise RobenchError(f"--attack {attack}: transfer analysis needs a PGD suite (pgd20)")
    if n is not None and n < 1:
        raise RobenchError(f"--n must be >= 1, got {n}")
    runtime = Runtime.select(device)
    figures = current().on_main(  # not sharded: under torchrun, rank 0 does it all
        lambda: transfer_analysis(
            run_dirs,
            out,
            out,
            runtime=runtime,
            console=console,
            n=n,
            data_dir=data_dir,
            seed=seed,
            suite_name=attack,
        )
    )
    console.print("figures:\n" + "\n".join(f"  {p}" for p in figures or []), soft_wrap=True)


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


@corruptions_app.command("preview")
def corruptions_preview(
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("corruptions-preview.png"),
    index: Annotated[int, typer.Option(help="Which test image (official order).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the corruption generator.")] = 0,
    data: Annotated[str, typer.Option(help="Data source.")] = "cifar10",
    data_dir: DataDir = None,
) -> None:
    """A contact sheet: one test image under all 15 corruptions x 5 severities."""
    import torch

    from robench.corruptions.preview import contact_sheet
    from robench.data import load_test

    if index < 0:
        raise RobenchError(f"--index must be >= 0, got {index}")
    test, info = load_test(data, data_dir, n=None)
    if index >= len(test):
        raise RobenchError(f"--index {index}: the test set has {len(test)} images")
    image = torch.from_numpy(test.images[index]).permute(2, 0, 1).float() / 255
    path = contact_sheet(image, out, seed=seed)
    console.print(f"wrote {path} (test image {index} of {info['dataset']}, seed {seed})")


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
        if _state["debug"]:
            raise
        if rank == 0:
            err_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    finally:
        distributed.shutdown()
