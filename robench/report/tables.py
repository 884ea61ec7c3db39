"""Boards as document tables: Markdown, and the HTML tables of the report.

A board is shown at two widths. Its *compact* columns (identity and headline metrics, each
percentage with its interval) are what a reader compares at a glance; its *shown* columns
(the schema's, with the protocol) sit behind a toggle in the report, and every column stays in
the CSV. Cells are escaped text: a run name is never read as markup.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from robench.columns import PUBLISHED, BoardSchema
from robench.leaderboard.render import FLAG_MARK, row_estimate
from robench.leaderboard.schema import SCHEMAS, schema_for

OPTIONAL = {c.name for c in PUBLISHED}
IDENTITY = ("row", "pretext", "scenario", "run")  # what names a row, in reading order
# What each flag (leaderboards/README.md, `flags`) means, for a reader who meets it
FLAG_MEANINGS = {
    "gradient_masking_suspected": "a gradient-free attack (Square) fooled what PGD could not",
    "attack_changed_no_prediction": "the attack changed no prediction at all",
    "cross_check_off": "the gradient-masking cross-check was switched off",
    "zero_gradients": "some inputs had all-zero input gradients",
    "nonfinite_gradients": "some input gradients were NaN or infinite",
    "softmax_output": "the model outputs probabilities, not logits",
    "randomized": "the model is randomised (its predictions change between calls)",
    "training_mode": "the model was evaluated in training mode",
    "aa": "AutoAttack's own warning",
}


def board_schema(board: pd.DataFrame, name: str) -> BoardSchema | None:
    """The schema of a board by name; a board under another file name (robustbench-linf.csv)
    is known by its columns."""
    return SCHEMAS.get(name) or schema_for(Path(f"{name}.csv"), board)


def shown_columns(board: pd.DataFrame, name: str) -> list[str]:
    """The schema's `shown` columns (all columns stay in the CSV); unknown boards: all."""
    schema = board_schema(board, name)
    shown = schema.shown if schema is not None else ()
    columns = [c for c in shown if c in board.columns] if shown else list(board.columns)
    # published numbers exist only for zoo models: no column of dashes for robench's runs
    return [c for c in columns if c not in OPTIONAL or board[c].notna().any()]


def compact_columns(board: pd.DataFrame, name: str) -> list[str]:
    """The schema's `compact` columns, else its identity and compared metrics; a column that
    is the same in every row (one eps, one pretext) is left to the caption, except the row's
    name (`run`, `row`): a one-row board still says whose numbers these are."""
    schema = board_schema(board, name)
    if schema is None:
        return shown_columns(board, name)
    wanted = schema.compact or (*IDENTITY, *schema.metrics)
    columns = [c for c in dict.fromkeys(wanted) if c in board.columns]
    named = {"run", "row"}
    varying = [
        c
        for c in columns
        if c in named or c in schema.percent or board[c].nunique(dropna=False) > 1
    ]
    return varying or columns


def _cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def is_flagged(row: pd.Series) -> bool:
    """A row whose sanity checks or masking cross-check found something (its number is
    doubtful: see its flags)."""
    value = row.get("flags")
    return isinstance(value, str) and bool(value)


def flag_kinds(flags: str) -> list[str]:
    """'gradient_masking_suspected:9/64;cross_check_off' -> its flags' names (aa_* as aa)."""
    names = (part.split(":")[0].strip() for part in str(flags).replace(",", ";").split(";"))
    return list(dict.fromkeys("aa" if n.startswith("aa_") else n for n in names if n))


def flag_meaning(kind: str) -> str:
    return FLAG_MEANINGS.get(kind, "see leaderboards/README.md")


def flag_note(board: pd.DataFrame) -> str:
    flagged = [row["flags"] for _, row in board.iterrows() if is_flagged(row)]
    if not flagged:
        return ""
    kinds = dict.fromkeys(k for flags in flagged for k in flag_kinds(flags))
    meanings = "; ".join(f"{k}: {flag_meaning(k)}" for k in kinds)
    return (
        f"{FLAG_MARK} {len(flagged)} flagged row(s): their numbers are doubtful, see the flags "
        f"column ({meanings})"
    )


def row_cell(row: pd.Series, column: str) -> str:
    """A cell; a percentage with its interval (`32.5 ± 2.9`) where the row has one."""
    if f"{column}_lo" in row.index and f"{column}_hi" in row.index:
        return row_estimate(row, column)
    return _cell(row[column])


def name_cell(row: pd.Series, column: str, text: str) -> str:
    return f"{FLAG_MARK} {text}" if column == "run" and is_flagged(row) else text


def board_markdown(board: pd.DataFrame, name: str) -> str:
    columns = shown_columns(board, name)
    lines = [
        "| " + " | ".join(columns) + " |",
        "|"
        + "".join("---:|" if pd.api.types.is_numeric_dtype(board[c]) else "---|" for c in columns),
    ]
    for _, row in board.iterrows():
        cells = (
            html.escape(name_cell(row, c, row_cell(row, c)), quote=False).replace("|", "\\|")
            for c in columns
        )
        lines.append("| " + " | ".join(cells) + " |")
    note = flag_note(board)
    return "\n".join(lines) + "\n" + (f"\n**{note}**\n" if note else "")


def table_html(board: pd.DataFrame, columns: list[str]) -> str:
    """One sortable table of `columns`; flagged rows are marked and tinted."""
    numeric = {c for c in columns if pd.api.types.is_numeric_dtype(board[c])}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        ('<tr class="flagged">' if is_flagged(row) else "<tr>")
        + "".join(
            f'<td class="num">{html.escape(row_cell(row, c))}</td>'
            if c in numeric
            else f"<td>{html.escape(name_cell(row, c, row_cell(row, c)))}</td>"
            for c in columns
        )
        + "</tr>\n"
        for _, row in board.iterrows()
    )
    return (
        f'<div class="scroll"><table class="board"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}</tbody></table></div>"
    )


def board_html(board: pd.DataFrame, name: str, columns: list[str] | None = None) -> str:
    """The board's flag note (above the table, where a reader starts) and its table of
    `columns` (default: the shown ones)."""
    note = flag_note(board)
    warning = f'<p class="flag-note">{html.escape(note)}</p>' if note else ""
    return warning + table_html(board, columns or shown_columns(board, name))
