"""The pipeline behind `robench reproduce`: train every run, evaluate each, write the boards.

CLI -> suite -> trainer/evaluator -> run directories -> leaderboard CSV -> report; this module
is the arrow chain, the CLI only parses arguments and calls it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from robench.atomic import write_text_atomic
from robench.config import Suite
from robench.eval.runner import evaluate_run
from robench.eval.suites import get_eval_suite
from robench.leaderboard import TABLE3, board_table, upsert_rows, write_board
from robench.leaderboard.table3 import build_table3, table3_rich
from robench.report.page import report_html
from robench.runtime import Runtime
from robench.train.pretrainer import pretrain_run
from robench.train.trainer import PRETRAIN_FOLDER, train_run


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
        )
    paths = []
    for run in runs:
        train_run(run, out, runtime=runtime, console=console, suite=suite, data_dir=data_dir)
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
    seed: int = 0,
) -> pd.DataFrame:
    """Evaluate each run and upsert its row as soon as it is done (no finished row is lost)."""
    suite = get_eval_suite(suite_name)
    board_path = leaderboard_dir / f"{suite.name}.csv"
    board = None
    for run_dir in run_dirs:
        row = evaluate_run(
            run_dir,
            suite,
            runtime=runtime,
            console=console,
            n=n,
            checkpoint=checkpoint,
            data_dir=data_dir,
            seed=seed,
        )
        board = upsert_rows(board_path, [row])
        console.print(
            f"{row['run']}: TA {row['ta']:.2f}  RA {row['ra']:.2f}  ({suite.name}, "
            f"n={row['n_eval']}, {row['eval_seconds']:.1f}s)"
        )
    assert board is not None
    names = {Path(p).name for p in run_dirs}
    console.print(board_table(board[board["run"].isin(names)], f"{suite.name}: {board_path}"))
    return board


def reproduce(
    suite: Suite,
    out: Path,
    *,
    only: list[str] | None,
    device: str,
    console: Console,
    data_dir: str | None,
) -> Path:
    """Train every run (pretraining first), evaluate PGD-20, write pgd20.csv and table3.csv."""
    runs_dir, boards_dir = out / "runs", out / "leaderboards"
    run_paths = train_suite(
        suite, runs_dir, only=only, device=device, console=console, data_dir=data_dir
    )
    board = evaluate_runs(
        run_paths,
        "pgd20",
        boards_dir,
        runtime=runtime_for(suite, device),
        console=console,
        data_dir=data_dir,
        seed=suite.protocol.seed,
    )
    names = {p.name for p in run_paths}
    ours = board[board["run"].isin(names)]
    table3 = build_table3(ours)
    table3_path = boards_dir / "table3.csv"
    table3 = write_board(table3_path, table3, TABLE3)
    console.print(table3_rich(table3, f"Table 3: {table3_path}"))

    from robench.report import plot_ta_ra

    figures = [plot_ta_ra(ours, out / "figures" / "ta_ra.png")]
    p3f4 = [runs_dir / r.name for r in suite.select(only) if r.scenario == "P3F4"]
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
    page = report_html(
        f"robench reproduce {suite.name}", {"pgd20": ours, "table3": table3}, figures
    )
    write_text_atomic(report, page)
    listing = "\n".join(f"  {p}" for p in figures)
    console.print(f"figures:\n{listing}\nreport: {report}", soft_wrap=True)
    return boards_dir


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
