"""The pipeline behind `robench reproduce`: train every run, evaluate each, write the boards.

CLI -> suite -> trainer/evaluator -> run directories -> leaderboard CSV -> report; this module
is the arrow chain, the CLI only parses arguments and calls it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from rich.console import Console

from robench.atomic import write_text_atomic
from robench.config import RunSpec, Suite
from robench.config.tables import TableSpec
from robench.eval.runner import EvalOptions, Evaluator
from robench.eval.suites import Overrides
from robench.eval.targets import EvalTarget, run_target
from robench.leaderboard import SCHEMAS, TABLE3, board_table, read_board, upsert_rows, write_board
from robench.leaderboard.paper_tables import (
    build_figure3,
    build_paper_table,
    figure3_rich,
    paper_table_rich,
)
from robench.leaderboard.render import metrics_table
from robench.leaderboard.schema import CORRUPTION_COLUMNS, UNFORESEEN_COLUMNS
from robench.leaderboard.table3 import PAPER_PRETEXTS, build_table3, table3_rich
from robench.report.page import report_html
from robench.runtime import Runtime
from robench.train.pretrainer import pretrain_run
from robench.train.trainer import CHECKPOINT_EVERY, PRETRAIN_FOLDER, train_run


def runtime_for(suite: Suite, device: str) -> Runtime:
    p = suite.protocol
    return Runtime.select(device, amp=p.amp, channels_last=p.channels_last, compile=p.compile)


def train_suite(
    suite: Suite,
    out: Path,
    *,
    only: list[str] | None,
    device: str,
    console: Console,
    data_dir: str | None,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> list[Path]:
    """Pretrain what the selected runs start from (each pretraining once), then train them."""
    runtime = runtime_for(suite, device)
    runs = suite.select(only)
    for spec in suite.pretrainings(runs):
        pretrain_run(
            spec,
            out / PRETRAIN_FOLDER,
            runtime=runtime,
            console=console,
            suite=suite,
            data_dir=data_dir,
            checkpoint_every=checkpoint_every,
        )
    paths = []
    for run in runs:
        train_run(
            run,
            out,
            runtime=runtime,
            console=console,
            suite=suite,
            data_dir=data_dir,
            checkpoint_every=checkpoint_every,
        )
        paths.append(out / run.name)
    return paths


def evaluate_runs(
    run_dirs: list[Path],
    suite_name: str,
    leaderboard_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    n: int | None = None,
    checkpoint: str = "best_ta",
    data_dir: str | None = None,
    options: EvalOptions | None = None,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Evaluate each run; see `evaluate_targets`."""
    targets = (run_target(path, checkpoint=checkpoint, data_dir=data_dir, n=n) for path in run_dirs)
    return evaluate_targets(
        targets,
        suite_name,
        leaderboard_dir,
        runtime=runtime,
        console=console,
        options=options or EvalOptions(seed=seed),
    )


def evaluate_targets(
    targets: Iterable[EvalTarget],
    suite_name: str,
    leaderboard_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    options: EvalOptions,
) -> dict[str, pd.DataFrame]:
    """Run `suite_name` on each target and upsert its rows as soon as they exist.

    A finished target's rows are on disk before the next target starts, so an interrupted
    evaluation loses nothing finished (and its flags let the unfinished one resume).
    Returns each board, restricted to the targets evaluated now.
    """
    boards: dict[str, pd.DataFrame] = {}
    names: set[str] = set()
    for target in targets:
        for note in target.notes:
            console.print(f"[yellow]warning:[/yellow] {note}")
        evaluator = Evaluator(target, runtime, console, options)
        for schema, rows in evaluator.run(suite_name):
            board = upsert_rows(leaderboard_dir / f"{schema.name}.csv", rows, schema)
            boards[schema.name] = board
            names.add(target.identity["run"])
            _print_rows(console, schema.name, rows)
    for board_name, board in boards.items():
        ours = board[board["run"].isin(names)]
        boards[board_name] = ours
        title = f"{board_name}: {leaderboard_dir / (board_name + '.csv')}"
        if board_name == "unforeseen":
            console.print(metrics_table(ours, ("ta", *UNFORESEEN_COLUMNS, "mean", "worst"), title))
        elif board_name == "corruptions":
            console.print(metrics_table(ours, ("ta", "mean", *CORRUPTION_COLUMNS), title))
        elif board_name == "corruptions_long":
            console.print(
                f"corruption x severity table: {leaderboard_dir / 'corruptions_long.csv'}"
            )
        else:
            console.print(board_table(ours, title))
    return boards


def _print_rows(console: Console, board: str, rows: list[dict]) -> None:
    if board == "corruptions_long":
        return
    for row in rows:
        parts = [f"TA {row['ta']:.2f}"]
        for key, label in (("ra", "RA"), ("aa_ra", "AA"), ("pgd20_ra", "PGD-20"), ("mean", "mean")):
            if key in row:
                parts.append(f"{label} {row[key]:.2f}")
        flags = f"  flags: {row['flags']}" if row.get("flags") else ""
        console.print(
            f"{row['run']}: {'  '.join(parts)}  ({board}, n={row['n_eval']}, "
            f"{row['eval_seconds']:.1f}s){flags}"
        )


def reproduce(
    suite: Suite,
    out: Path,
    *,
    only: list[str] | None,
    device: str,
    console: Console,
    data_dir: str | None,
    checkpoint_every: int = CHECKPOINT_EVERY,
) -> Path:
    """Train every run (pretraining first), evaluate PGD-20, write pgd20.csv and table3.csv."""
    runs_dir, boards_dir = out / "runs", out / "leaderboards"
    run_paths = train_suite(
        suite,
        runs_dir,
        only=only,
        device=device,
        console=console,
        data_dir=data_dir,
        checkpoint_every=checkpoint_every,
    )
    board = evaluate_runs(
        run_paths,
        "pgd20",
        boards_dir,
        runtime=runtime_for(suite, device),
        console=console,
        data_dir=data_dir,
        seed=suite.protocol.seed,
    )["pgd20"]
    names = {p.name for p in run_paths}
    ours = board[board["run"].isin(names)]
    runs = suite.select(only)
    table3_runs = {r.name for r in runs if is_table3_run(r)}
    table3 = build_table3(ours[ours["run"].isin(table3_runs)])
    table3_path = boards_dir / "table3.csv"
    table3 = write_board(table3_path, table3, TABLE3)
    console.print(table3_rich(table3, f"Table 3: {table3_path}"))
    boards = {"pgd20": ours, "table3": table3}
    boards.update(
        paper_tables(
            suite,
            {r.name for r in runs},
            runs_dir,
            boards_dir,
            runtime=runtime_for(suite, device),
            console=console,
            data_dir=data_dir,
        )
    )
    ensembles = set(suite.tables["table6"].rows) if "table6" in boards else set()
    everything = read_board(boards_dir / "pgd20.csv")
    boards["pgd20"] = everything[everything["run"].isin(names | ensembles)]

    from robench.report import plot_ta_ra

    figures = [plot_ta_ra(ours, out / "figures" / "ta_ra.png")]
    p3f4 = [runs_dir / r.name for r in runs if r.scenario == "P3F4" and r.name in table3_runs]
    if len(p3f4) >= 2:  # the paper's Table 4 / Figure 5: one (P3, F4) model per pretext
        figures += transfer_analysis(
            p3f4,
            out / "transfer",
            out / "figures",
            runtime=runtime_for(suite, device),
            console=console,
            data_dir=data_dir,
            seed=suite.protocol.seed,
        )
    report = out / "report.html"
    page = report_html(f"robench reproduce {suite.name}", boards, figures)
    write_text_atomic(report, page)
    listing = "\n".join(f"  {p}" for p in figures)
    console.print(f"figures:\n{listing}\nreport: {report}", soft_wrap=True)
    return boards_dir


def is_table3_run(run: RunSpec) -> bool:
    """A plain cell of Table 3: single-task (or no) std/adv pretraining of the default set.

    Runs that exist for the other tables (ensemble, random-smoothing or resized pretraining,
    the auxiliary-head baseline) would otherwise land in a Table 3 cell they do not belong to.
    """
    if run.protocol.auxiliary is not None:
        return False
    if run.pretraining is None:
        return True
    spec = run.pretraining
    return (
        spec.mode in ("std", "adv")
        and spec.task in PAPER_PRETEXTS
        and spec.name == f"{spec.mode}-{spec.task}"
    )


def paper_tables(
    suite: Suite,
    selected: set[str],
    runs_dir: Path,
    boards_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    data_dir: str | None,
) -> dict[str, pd.DataFrame]:
    """Tables 5-8 and Figure 3 as the suite's `[tables.*]` define them (runs already trained).

    Table 6 evaluates its ensembles under PGD-20 (rows of pgd20.csv named after the table row);
    Figure 3 evaluates its two runs under the 12 unforeseen attacks. A table whose runs were
    not all selected (`--only`) is skipped with a note rather than written with holes.
    """
    written: dict[str, pd.DataFrame] = {}
    images = {name: _pretrain_images(runs_dir, suite.runs[name]) for name in selected}
    for name, spec in suite.tables.items():
        missing = [run for run in spec.runs() if run not in selected]
        if missing:
            console.print(f"[dim]{name}: skipped, run {missing[0]!r} was not selected[/dim]")
            continue
        path = boards_dir / f"{name}.csv"
        if name == "table6":
            _evaluate_ensembles(spec, runs_dir, boards_dir, runtime, console, data_dir, suite)
        pgd20 = read_board(boards_dir / "pgd20.csv")
        if name == "figure3":
            unforeseen = _evaluate_figure3(
                spec, runs_dir, boards_dir, runtime, console, data_dir, suite
            )
            table = build_figure3(spec, pgd20, unforeseen)
            table = write_board(path, table, SCHEMAS[name])
            console.print(figure3_rich(table, str(path)))
        else:
            table = build_paper_table(spec, pgd20, images)
            table = write_board(path, table, SCHEMAS[name])
            console.print(paper_table_rich(table, name, str(path)))
        written[name] = table
    return written


def _pretrain_images(runs_dir: Path, run: RunSpec) -> int | None:
    """How many images the run's pretraining trained on, from its resolved config."""
    if run.pretraining is None:
        return None
    config = runs_dir / PRETRAIN_FOLDER / run.pretraining.name / "config.json"
    return int(json.loads(config.read_text())["data"]["train"])


def _evaluate_ensembles(
    spec: TableSpec,
    runs_dir: Path,
    boards_dir: Path,
    runtime: Runtime,
    console: Console,
    data_dir: str | None,
    suite: Suite,
) -> None:
    from robench.eval.targets import ensemble_target

    targets = (
        ensemble_target(
            [runs_dir / member for member in members],
            name=row,
            data_dir=data_dir,
            state_root=boards_dir / ".eval-state",
        )
        for row, members in spec.rows.items()
        if isinstance(members, tuple)
    )
    evaluate_targets(
        targets,
        "pgd20",
        boards_dir,
        runtime=runtime,
        console=console,
        options=EvalOptions(seed=suite.protocol.seed),
    )


def _evaluate_figure3(
    spec: TableSpec,
    runs_dir: Path,
    boards_dir: Path,
    runtime: Runtime,
    console: Console,
    data_dir: str | None,
    suite: Suite,
) -> pd.DataFrame:
    n = spec.options.get("n")
    targets = (
        run_target(runs_dir / str(run), data_dir=data_dir, n=n) for run in spec.rows.values()
    )
    return evaluate_targets(
        targets,
        "unforeseen",
        boards_dir,
        runtime=runtime,
        console=console,
        options=EvalOptions(
            seed=suite.protocol.seed, overrides=Overrides(steps=spec.options.get("steps"))
        ),
    )["unforeseen"]


def transfer_analysis(
    run_dirs: list[Path],
    out: Path,
    figures_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    n: int | None = None,
    data_dir: str | None = None,
    seed: int = 0,
    suite_name: str = "pgd20",
) -> list[Path]:
    """Transfer ASR matrix and overlaps (CSV + rich tables) and their two figures."""
    from robench.eval.transfer import asr_table, overlap_table, transfer_matrix, write_transfer
    from robench.report import plot_asr_heatmap, plot_overlap

    result = transfer_matrix(
        run_dirs, suite_name, n, runtime=runtime, data_dir=data_dir, seed=seed, console=console
    )
    csvs = write_transfer(result, out)
    console.print(asr_table(result))
    console.print(overlap_table(result))
    console.print("transfer tables:\n" + "\n".join(f"  {p}" for p in csvs), soft_wrap=True)
    return [
        plot_asr_heatmap(result.asr, figures_dir / "transfer_asr.png"),
        plot_overlap(result.overlap, figures_dir / "transfer_overlap.png"),
    ]
