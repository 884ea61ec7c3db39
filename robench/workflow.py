"""The pipeline behind `robench reproduce`: train every run, evaluate each, write the boards.

CLI -> suite -> trainer/evaluator -> run directories -> leaderboard CSV -> report; this module
is the arrow chain, the CLI only parses arguments and calls it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from robench.atomic import atomic_write
from robench.config import Suite
from robench.eval.runner import evaluate_run
from robench.eval.suites import get_eval_suite
from robench.leaderboard import board_table, upsert_rows
from robench.leaderboard.table3 import build_table3, table3_rich
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
    table3 = build_table3(board[board["run"].isin(names)])
    table3_path = boards_dir / "table3.csv"
    atomic_write(table3_path, lambda tmp: table3.to_csv(tmp, index=False))
    console.print(table3_rich(table3, f"Table 3: {table3_path}"))
    return boards_dir
