"""The paper's tables from a reproduction's boards: Table 3, Tables 5-8 and Figure 3.

Everything comes from the boards the session holds in memory (`BoardSet`): Table 3 from the
pgd20 rows of the plain Table 3 cells, Tables 5-8 from the pgd20 rows the suite's `[tables.*]`
name (Table 6's ensembles are pgd20 rows named after the table row), Figure 3 from pgd20 and
unforeseen rows. Each table is written to `<boards>/<name>.csv` and printed.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from rich.console import Console

from robench.config import RunSpec
from robench.config.tables import TableSpec
from robench.leaderboard.board_set import BoardSet
from robench.leaderboard.paper_tables import (
    build_figure3,
    build_paper_table,
    figure3_rich,
    paper_table_rich,
)
from robench.leaderboard.schema import SCHEMAS, TABLE3
from robench.leaderboard.store import write_board
from robench.leaderboard.table3 import build_table3, table3_rich


def write_table3(boards: BoardSet, runs: list[RunSpec], console: Console) -> pd.DataFrame:
    cells = {r.name for r in runs if r.is_table3_cell}
    path = boards.path("table3")
    table = write_board(path, build_table3(boards.ours("pgd20", cells)), TABLE3)
    console.print(table3_rich(table, f"Table 3: {path}"))
    return table


def write_paper_tables(
    tables: dict[str, TableSpec],
    boards: BoardSet,
    pretrain_images: Callable[[str], int | None],
    console: Console,
) -> dict[str, pd.DataFrame]:
    """Tables 5-8 and Figure 3 (the evaluations they need have run; see workflow.py)."""
    written: dict[str, pd.DataFrame] = {}
    if not tables:
        return written
    pgd20 = boards.ours("pgd20")
    images = {run: pretrain_images(run) for spec in tables.values() for run in spec.runs()}
    for name, spec in tables.items():
        path = boards.path(name)
        if name == "figure3":
            table = build_figure3(spec, pgd20, boards.ours("unforeseen"))
            table = write_board(path, table, SCHEMAS[name])
            console.print(figure3_rich(table, str(path)))
        else:
            table = write_board(path, build_paper_table(spec, pgd20, images), SCHEMAS[name])
            console.print(paper_table_rich(table, name, str(path)))
        written[name] = table
    return written


def complete_tables(
    tables: dict[str, TableSpec], selected: set[str], console: Console
) -> dict[str, TableSpec]:
    """The suite's `[tables.*]` whose runs were all selected; the others skipped with a note.

    A table with a run missing (`--only`) would be written with holes, so it is not written.
    """
    complete = {}
    for name, spec in tables.items():
        missing = [run for run in spec.runs() if run not in selected]
        if missing:
            console.print(f"[dim]{name}: skipped, run {missing[0]!r} was not selected[/dim]")
        else:
            complete[name] = spec
    return complete
