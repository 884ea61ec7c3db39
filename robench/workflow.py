"""The pipeline behind `robench reproduce`: train every run, evaluate each, write the boards.

CLI -> suite -> trainer/evaluator -> run directories -> leaderboard CSV -> report; this module
is the arrow chain, the CLI only parses arguments and calls it.

Under torchrun every rank runs this chain: fine-tuning and evaluation are sharded across the
ranks, while pretraining, the boards, figures, transfer analysis and report are rank 0's
alone (the others wait at a barrier; what they need next is on disk when they go on).
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
from robench.distributed import current
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
        # Pretraining runs on rank 0 alone (see pretrainer): its trunk is on disk afterwards.
        current().on_main(
            lambda spec=spec: pretrain_run(
                spec,
                out / PRETRAIN_FOLDER,
                runtime=runtime,
                console=console,
                suite=suite,
                data_dir=data_dir,
                checkpoint_every=checkpoint_every,
            )
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
    Returns each board, restricted to the targets evaluated now (on rank 0; under torchrun
    the other ranks help compute the flags and return no boards).
    """
    if not current().is_main:
        for target in targets:
            Evaluator(target, runtime, console, options).run(suite_name)
        return {}
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
    boards = evaluate_runs(
        run_paths,
        "pgd20",
        boards_dir,
        runtime=runtime_for(suite, device),
        console=console,
        data_dir=data_dir,
        seed=suite.protocol.seed,
    )
    tables = complete_tables(suite, {r.name for r in suite.select(only)}, console)
    unforeseen = evaluate_table_models(
        tables,
        runs_dir,
        boards_dir,
        runtime=runtime_for(suite, device),
        console=console,
        data_dir=data_dir,
        seed=suite.protocol.seed,
    )
    current().on_main(
        lambda: _tables_and_report(
            suite,
            out,
            boards["pgd20"],
            run_paths,
            only,
            device,
            console,
            data_dir,
            (tables, unforeseen),
        )
    )
    return boards_dir


def _tables_and_report(
    suite: Suite,
    out: Path,
    board: pd.DataFrame,
    run_paths: list[Path],
    only: list[str] | None,
    device: str,
    console: Console,
    data_dir: str | None,
    paper: tuple[dict[str, TableSpec], pd.DataFrame | None],
) -> None:
    """Table 3, Tables 5-8, Figure 3, the figures, the transfer analysis and the HTML report."""
    runs_dir, boards_dir = out / "runs", out / "leaderboards"
    names = {p.name for p in run_paths}
    ours = board[board["run"].isin(names)]
    runs = suite.select(only)
    table3_runs = {r.name for r in runs if is_table3_run(r)}
    table3 = build_table3(ours[ours["run"].isin(table3_runs)])
    table3_path = boards_dir / "table3.csv"
    table3 = write_board(table3_path, table3, TABLE3)
    console.print(table3_rich(table3, f"Table 3: {table3_path}"))
    boards = {"pgd20": ours, "table3": table3}
    boards.update(paper_tables(suite, paper[0], runs_dir, boards_dir, paper[1], console))
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


def complete_tables(suite: Suite, selected: set[str], console: Console) -> dict[str, TableSpec]:
    """The suite's `[tables.*]` whose runs were all selected; the others skipped with a note.

    A table with a run missing (`--only`) would be written with holes, so it is not written.
    """
    tables = {}
    for name, spec in suite.tables.items():
        missing = [run for run in spec.runs() if run not in selected]
        if missing:
            console.print(f"[dim]{name}: skipped, run {missing[0]!r} was not selected[/dim]")
        else:
            tables[name] = spec
    return tables


def evaluate_table_models(
    tables: dict[str, TableSpec],
    runs_dir: Path,
    boards_dir: Path,
    *,
    runtime: Runtime,
    console: Console,
    data_dir: str | None,
    seed: int,
) -> pd.DataFrame | None:
    """What the paper tables evaluate beyond each run's PGD-20 (every rank takes part).

    Table 6: each ensemble under PGD-20, a row of pgd20.csv named after its table row.
    Figure 3: its two runs under the 12 unforeseen attacks; their rows are returned (rank 0).
    """
    if "table6" in tables:
        _evaluate_ensembles(
            tables["table6"], runs_dir, boards_dir, runtime, console, data_dir, seed
        )
    if "figure3" in tables:
        spec = tables["figure3"]
        n = spec.options.get("n")
        targets = (
            run_target(runs_dir / str(run), data_dir=data_dir, n=n) for run in spec.rows.values()
        )
        overrides = Overrides(steps=spec.options.get("steps"))
        boards = evaluate_targets(
            targets,
            "unforeseen",
            boards_dir,
            runtime=runtime,
            console=console,
            options=EvalOptions(seed=seed, overrides=overrides),
        )
        return boards.get("unforeseen")
    return None


def paper_tables(
    suite: Suite,
    tables: dict[str, TableSpec],
    runs_dir: Path,
    boards_dir: Path,
    unforeseen: pd.DataFrame | None,
    console: Console,
) -> dict[str, pd.DataFrame]:
    """Tables 5-8 and Figure 3 from the boards (`evaluate_table_models` ran first)."""
    written: dict[str, pd.DataFrame] = {}
    names = {run for spec in tables.values() for run in spec.runs()}
    images = {name: _pretrain_images(runs_dir, suite.runs[name]) for name in names}
    pgd20 = read_board(boards_dir / "pgd20.csv")
    for name, spec in tables.items():
        path = boards_dir / f"{name}.csv"
        if name == "figure3":
            assert unforeseen is not None
            table = write_board(path, build_figure3(spec, pgd20, unforeseen), SCHEMAS[name])
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
    seed: int,
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
        options=EvalOptions(seed=seed),
    )


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
