"""Leaderboards as rich tables for the terminal.

Protocol columns that are the same in every row (attack, eps, images, data set, device ...)
go into the caption once, so the table stays readable in an 80-column terminal while every
number is still shown with its protocol.
"""

from __future__ import annotations

import pandas as pd
from rich.table import Table

RESULT_COLUMNS = ("run", "pretext", "scenario", "checkpoint", "ta", "ra", "epochs_to_best")
PROTOCOL_COLUMNS = ("attack", "eps", "steps", "restarts", "n_eval", "seed", "dataset", "device")
_TITLES = {"ta": "TA %", "ra": "RA %", "epochs_to_best": "epochs", "n_eval": "n"}
_NUMERIC = {"ta", "ra", "epochs_to_best", "steps", "restarts", "n_eval", "seed"}


def board_table(board: pd.DataFrame, title: str) -> Table:
    shared = {c: board[c].iloc[0] for c in PROTOCOL_COLUMNS if c in board and _uniform(board[c])}
    varying = [c for c in PROTOCOL_COLUMNS if c in board and c not in shared]
    columns = [c for c in RESULT_COLUMNS if c in board] + varying
    caption = "  ".join(f"{_TITLES.get(c, c)}={_cell(v, c)}" for c, v in shared.items())
    table = Table(title=title, caption=caption or None, header_style="bold")
    for column in columns:
        table.add_column(
            _TITLES.get(column, column),
            justify="right" if column in _NUMERIC else "left",
            no_wrap=column in RESULT_COLUMNS,
        )
    for _, row in board.sort_values(["pretext", "scenario", "run"], na_position="last").iterrows():
        table.add_row(*(_cell(row[c], c) for c in columns))
    return table


def _uniform(series: pd.Series) -> bool:
    return len(series) > 0 and series.astype(str).nunique(dropna=False) == 1


def _cell(value: object, column: str) -> str:
    if value is pd.NA or value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if column in ("ta", "ra"):
        return f"{float(value):.2f}"
    return str(value)
