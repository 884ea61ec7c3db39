"""The tool commands: plot, leaderboard show|validate|diff|render, list, corruptions preview."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from robench.atomic import check_output_file
from robench.cli.common import DataDir, app, console, corruptions_app, leaderboard_app
from robench.errors import RobenchError


@app.command()
def plot(
    csv: Annotated[Path, typer.Argument(help="A pgd20 leaderboard CSV.")],
    out: Annotated[Path, typer.Option(help="The PNG to write.")],
    n: Annotated[
        int | None,
        typer.Option(help="Plot the evaluations on n images (default: each run's largest n)."),
    ] = None,
) -> None:
    """The paper's Figure 1: TA against RA, marker area = epochs to the best model, 95%
    intervals as error bars; one point per run."""
    from robench.leaderboard import PGD20, read_board
    from robench.report import plot_ta_ra

    check_output_file(out, "--out")
    board = read_board(csv, PGD20)
    if board.empty:
        raise RobenchError(f"{csv} has no rows to plot")
    if n is not None and not (board["n_eval"] == n).any():
        sizes = ", ".join(str(v) for v in sorted(set(board["n_eval"].dropna())))
        raise RobenchError(f"--n {n}: no row of {csv} was evaluated on {n} images (it has {sizes})")
    console.print(f"wrote {plot_ta_ra(board, out, n)}", soft_wrap=True, markup=False)


@leaderboard_app.command("show")
def leaderboard_show(csv: Annotated[Path, typer.Argument(help="A leaderboard CSV.")]) -> None:
    """Print a leaderboard as a table."""
    from robench.leaderboard import board_table, read_board
    from robench.leaderboard.render import columns_table, metrics_table, plain
    from robench.leaderboard.schema import schema_for
    from robench.leaderboard.table3 import table3_rich

    board = read_board(csv)
    schema = schema_for(csv, board)
    console.print(plain(str(csv)), soft_wrap=True)  # the path whole, never wrapped
    title = csv.stem
    if csv.stem == "table3":
        console.print(table3_rich(board, title))
    elif schema is not None and schema.display == "metrics":  # a wide board, on its side
        console.print(metrics_table(board, schema.display_metrics, title))
    elif schema is not None and "run" not in schema.names:  # reference rows, no runs
        console.print(columns_table(board, list(schema.shown or schema.names), title))
    else:
        console.print(board_table(board, title))


@leaderboard_app.command("validate")
def leaderboard_validate(
    csvs: Annotated[list[Path], typer.Argument(help="Leaderboard CSVs to check.")],
) -> None:
    """Check files against the leaderboard schema: exit 0 when all are valid, 1 otherwise."""
    from robench.leaderboard import validate_board
    from robench.leaderboard.store import read_raw

    failed = 0
    for csv in csvs:
        if not csv.is_file():
            raise RobenchError(f"leaderboard {csv} does not exist")
        schema, problems = validate_board(csv)
        name = schema.name if schema else "unknown"
        if problems:
            failed += 1
            console.print(f"[red]invalid[/red] {escape(f'{csv} ({name}): ' + '; '.join(problems))}")
        else:
            versioned = schema is not None and "schema_version" in schema.names
            old = (
                ""
                if not versioned or "schema_version" in read_raw(csv).columns
                else ", format version 1"
            )
            console.print(f"[green]valid[/green] {escape(f'{csv} ({name}{old})')}")
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
    significance: Annotated[
        bool,
        typer.Option(
            "--significance",
            help="A change beyond --tol counts only if significant too (paired McNemar on "
            "stored flags, else Fisher's exact on the counts).",
        ),
    ] = False,
    alpha: Annotated[float, typer.Option(help="Level of --significance's tests.")] = 0.05,
) -> None:
    """What moved: exit 0 within tolerance, 1 on a regression or lost row, 2 on bad input."""
    from robench.leaderboard.diff import diff_boards, diff_markdown, diff_tables, summary

    if fmt not in ("rich", "md"):
        raise RobenchError(f"--format must be rich or md, got {fmt!r}")
    result = diff_boards(
        base, new, tol=tol, key=tuple(key) if key else None,
        significance=alpha if significance else None,
    )  # fmt: skip
    if fmt == "md":
        sys.stdout.write(diff_markdown(result))
    else:
        for table in diff_tables(result):
            console.print(table)
        style = "green" if result.ok else "red"
        console.print(f"[{style}]{escape(summary(result))}[/{style}]", soft_wrap=True)
    if not result.ok:
        raise typer.Exit(1)


@leaderboard_app.command("render")
def leaderboard_render(
    csvs: Annotated[
        list[Path],
        typer.Argument(help="Leaderboard CSVs, e.g. pgd20.csv and a robustbench board beside it."),
    ],
    fmt: Annotated[str, typer.Option("--format", help="md or html.")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write here (md default: stdout).")] = None,
) -> None:
    """Leaderboards as markdown tables or one self-contained, sortable HTML page."""
    from robench.atomic import write_text_atomic
    from robench.leaderboard import read_board
    from robench.report.page import report_html
    from robench.report.tables import board_markdown

    if out is not None:
        check_output_file(out, "--out")
    boards = {csv.stem: read_board(csv) for csv in csvs}
    if len(boards) < len(csvs):
        raise RobenchError("two of the boards have the same file name; rename one")
    if fmt == "md":
        many = len(boards) > 1
        text = "\n".join(
            (f"## {name}\n\n" if many else "") + board_markdown(board, name)
            for name, board in boards.items()
        )
    elif fmt == "html":
        names = ", ".join(csv.name for csv in csvs)
        text = report_html(f"robench leaderboard: {names}", boards, [])
        out = out or csvs[0].with_suffix(".html")
    else:
        raise RobenchError(f"--format must be md or html, got {fmt!r}")
    if out is None:
        sys.stdout.write(text)
    else:
        write_text_atomic(out, text)
        console.print(f"wrote {out}", markup=False)


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
        from robench.eval.suites import suite_names

        names = suite_names()
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
    from robench.corruptions.preview import contact_sheet
    from robench.data import load_test
    from robench.data.convert import to_float_chw

    if index < 0:
        raise RobenchError(f"--index must be >= 0, got {index}")
    check_output_file(out, "--out")
    if seed < 0:
        raise RobenchError(f"--seed must be >= 0, got {seed}")
    test, info = load_test(data, data_dir, n=None)
    if index >= len(test):
        raise RobenchError(f"--index {index}: the test set has {len(test)} images")
    image = to_float_chw(test.images[index])
    path = contact_sheet(image, out, seed=seed)
    console.print(
        f"wrote {path} (test image {index} of {info['dataset']}, seed {seed})", markup=False
    )
