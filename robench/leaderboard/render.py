"""Leaderboards as rich tables for the terminal.

Protocol columns that are the same in every row (attack, eps, images, data set, device ...)
go into the caption once, so the table stays readable in an 80-column terminal while every
number is still shown with its protocol.
"""

from __future__ import annotations

import pandas as pd
from rich.table import Table
from rich.text import Text

from robench.columns import BoardSchema
from robench.stats.intervals import estimate

RESULT_COLUMNS = (
    "run",
    "pretext",
    "scenario",
    "checkpoint",
    "ta",
    "ra",
    "aa_ra",
    "pgd20_ra",
    "worst_ra",
    "published_ta",
    "published_aa",
    "epochs_to_best",
    "flags",
)
PROTOCOL_COLUMNS = (
    "attack",
    "eps",
    "steps",
    "restarts",
    "n_eval",
    "seed",
    "dataset",
    "corruption_source",
    "device",
    "precision",
    "overrides",
)
_TITLES = {
    "ta": "TA %",
    "ra": "RA %",
    "aa_ra": "AA %",
    "pgd20_ra": "PGD-20 %",
    "worst_ra": "worst %",
    "published_ta": "published TA %",
    "published_aa": "published AA %",
    "clean_acc": "clean %",
    "autoattack_acc": "AA %",
    "epochs_to_best": "epochs",
    "n_eval": "n",
    "precision": "precision",
}
_PERCENT = {"ta", "ra", "aa_ra", "pgd20_ra", "worst_ra"}
MAX_NAME_WIDTH = 32
FLAGGED = "bold red"  # a row whose sanity checks or cross-check found something
FLAG_MARK = "\u26a0"  # its mark in the flags column; the flags themselves go under the table
_PUBLISHED = {"published_ta", "published_aa", "clean_acc", "autoattack_acc", "reported"}
_NUMERIC = _PERCENT | _PUBLISHED | {"epochs_to_best", "steps", "restarts", "n_eval", "seed"}


def row_estimate(row: pd.Series | dict, metric: str) -> str:
    """`estimate` of a row's metric, with its `_lo`/`_hi` columns when the row has them."""
    return estimate(row.get(metric), row.get(metric + "_lo"), row.get(metric + "_hi"))


def plain(value: object) -> Text:
    """Text as it is: a board's cells, names and paths are never read as rich markup."""
    return Text(str(value))


def board_table(board: pd.DataFrame, title: str) -> Table:
    shared = _shared(board)
    if _same_as(board, "worst_ra", "ra"):  # the cross-check found nothing more: said once
        shared["worst_ra"] = "RA"
    varying = [c for c in PROTOCOL_COLUMNS if c in board and c not in shared]
    columns = [c for c in RESULT_COLUMNS if c in board and c not in shared] + varying
    columns = [c for c in columns if not _empty(board[c])]  # e.g. no flags, no overrides
    caption = "  ".join(f"{_TITLES.get(c, c)}={_cell(v, c)}" for c, v in shared.items())
    if "flags" in board and _empty(board["flags"]):
        caption += "  flags: none"
    elif "flags" in board:  # a mark in the table, the flags in full under it
        caption += "".join(
            f"\n{FLAG_MARK} {row['run']}: {row['flags']}"
            for _, row in board.iterrows()
            if not pd.isna(row["flags"]) and row["flags"]
        )
    table = Table(title=plain(title), caption=plain(caption) if caption else None)
    table.header_style = "bold"
    for column in columns:
        # Numbers and the run's name are never cut.
        widest = max((len(_row_cell(r, column)) for _, r in board.iterrows()), default=0)
        uncut = column == "run" or column in _NUMERIC
        table.add_column(
            _TITLES.get(column, column),
            justify="right" if column in _NUMERIC else "left",
            no_wrap=column in RESULT_COLUMNS and column not in FOLDABLE,
            overflow="fold" if column == "run" else "ellipsis",
            min_width=min(widest, MAX_NAME_WIDTH) if uncut else None,
        )
    for _, row in board.sort_values(["pretext", "scenario", "run"], na_position="last").iterrows():
        flagged = "flags" in row and not pd.isna(row["flags"]) and bool(row["flags"])
        mark = FLAG_MARK if flagged else ""
        cells = [mark if c == "flags" else _row_cell(row, c) for c in columns]
        table.add_row(*map(plain, cells), style=FLAGGED if flagged else None)
    return table


FOLDABLE = ("pretext", "scenario", "checkpoint")  # identity columns a caption can hold


def _shared(board: pd.DataFrame) -> dict[str, object]:
    """Protocol columns (and pretext, scenario, checkpoint) with one value in every row:
    said once in the caption (empty ones left out)."""
    return {
        c: board[c].iloc[0]
        for c in (*FOLDABLE, *PROTOCOL_COLUMNS)
        if c in board and _uniform(board[c]) and _cell(board[c].iloc[0], c) not in ("", "-")
    }


def _same_as(board: pd.DataFrame, column: str, other: str) -> bool:
    """Whether `column` equals `other` in every row (both present, none empty)."""
    if column not in board or other not in board or not len(board):
        return False
    a, b = board[column].astype("Float64"), board[other].astype("Float64")
    return bool(((a - b).abs() < 1e-9).fillna(False).all())


def _empty(series: pd.Series) -> bool:
    return all(_cell(v, "") in ("", "-") for v in series)


def _uniform(series: pd.Series) -> bool:
    return len(series) > 0 and series.astype(str).nunique(dropna=False) == 1


def number(value: object, signed: bool = False) -> str:
    """A percentage or difference for a table cell; '-' where there is none."""
    if value is None or pd.isna(value):
        return "-"
    return f"{float(value):+.2f}" if signed else f"{float(value):.2f}"


def integer(value: object) -> str:
    return "-" if value is None or pd.isna(value) else str(int(value))


def _row_cell(row: pd.Series, column: str) -> str:
    if column in _PERCENT:
        return row_estimate(row, column)
    return _cell(row[column], column)


def _cell(value: object, column: str) -> str:
    if value is pd.NA or value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if column in _PERCENT | _PUBLISHED and not isinstance(value, str):
        return f"{float(value):.2f}"
    return str(value)


def metrics_table(board: pd.DataFrame, metrics: tuple[str, ...], title: str) -> Table:
    """A wide board turned on its side: one row per metric, one column per run.

    The unforeseen (12 attacks) and corruption (15) boards are too wide for a terminal the
    usual way round; their protocol goes into the caption as in `board_table`.
    """
    shared = _shared(board)
    caption = "  ".join(f"{_TITLES.get(c, c)}={_cell(v, c)}" for c, v in shared.items())
    table = Table(title=plain(title), caption=plain(caption) if caption else None)
    table.header_style = "bold"
    table.add_column("accuracy %", no_wrap=True)
    rows = board.sort_values(["pretext", "scenario", "run"], na_position="last")
    for _, row in rows.iterrows():
        table.add_column(plain(f"{row['run']}\n{row.get('checkpoint', '')}"), justify="right")
    for metric in metrics:
        cells = [row_estimate(row, metric) for _, row in rows.iterrows()]
        table.add_row(metric, *cells)
    if "flags" in rows:
        table.add_row("flags", *[plain("-" if pd.isna(v) or not v else v) for v in rows["flags"]])
    return table


def columns_table(board: pd.DataFrame, columns: list[str], title: str) -> Table:
    """A board that is no evaluation's (RobustBench's published entries): its columns as they
    are, best first by its last numeric column's order in `columns`."""
    shared = {c: board[c].iloc[0] for c in columns if len(board) > 1 and _uniform(board[c])}
    caption = "  ".join(f"{c}={_cell(v, c)}" for c, v in shared.items())
    columns = [c for c in columns if c not in shared]
    table = Table(title=plain(title), caption=plain(caption) if caption else None)
    table.header_style = "bold"
    for column in columns:
        numeric = column in _NUMERIC
        widest = max((len(_cell(v, column)) for v in board[column]), default=0)
        table.add_column(
            _TITLES.get(column, column),
            justify="right" if numeric else "left",
            overflow="fold",  # a model's name is never cut
            min_width=min(widest, MAX_NAME_WIDTH) if column == board.columns[0] else None,
            no_wrap=numeric,
        )
    ranked = [c for c in columns if c in _PUBLISHED]
    rows = board.sort_values(ranked[-1], ascending=False) if ranked else board
    for _, row in rows.iterrows():
        table.add_row(*(plain(_cell(row[c], c)) for c in columns))
    return table


def row_line(board: str, row: dict) -> Text:
    """One evaluated row as a line: the headline metrics, n, seconds and any flags."""
    parts = [f"TA {row_estimate(row, 'ta')}"]
    labels = (("ra", "RA"), ("aa_ra", "AA"), ("pgd20_ra", "PGD-20"), ("worst_ra", "worst"))
    for key, label in (*labels, ("mean", "mean")):
        if key in row and row[key] is not None and not pd.isna(row[key]):
            parts.append(f"{label} {row_estimate(row, key)}")
    published = [
        f"{label} {float(row[key]):.2f}"
        for key, label in (("published_ta", "TA"), ("published_aa", "AA"))
        if row.get(key) is not None and not pd.isna(row[key])
    ]
    if published:
        parts.append(f"[published: {', '.join(published)}]")
    flags = f"  FLAGGED: {row['flags']}" if row.get("flags") else ""
    return Text(
        f"{row['run']}: {'  '.join(parts)}  ({board}, n={row['n_eval']}, "
        f"{row['eval_seconds']:.1f}s){flags}",
        style=FLAGGED if flags else "",
    )


def board_view(schema: BoardSchema, board: pd.DataFrame, title: str) -> Table | Text:
    """A board as its schema says it reads best in a terminal (`display`)."""
    if schema.display == "path":
        return plain(title)
    if schema.display == "metrics":
        return metrics_table(board, schema.display_metrics, title)
    return board_table(board, title)
