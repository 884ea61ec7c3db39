"""Leaderboards as documents: a markdown table, and one self-contained HTML report.

The HTML page needs nothing but a browser: styles and a few lines of sorting script are
inline, figures are embedded as base64 PNGs, so `report.html` can be mailed or attached to a
CI run as one file.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

import robench
from robench.columns import PUBLISHED
from robench.leaderboard.render import row_estimate
from robench.leaderboard.schema import SCHEMAS, schema_for
from robench.provenance import now_iso

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0 1em; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 10px; text-align: left; white-space: nowrap; }
.scroll { overflow-x: auto; }
th { cursor: pointer; background: #f4f4f4; user-select: none; white-space: nowrap; }
th:after { content: " \\2195"; color: #aaa; }
td.num { text-align: right; } tr:hover td { background: #fafafa; }
.caption, .meta { color: #666; font-size: .9em; }
tr.flagged td { background: #fde8e8; color: #8a1c1c; }
.flag-note { color: #8a1c1c; font-weight: 600; }
figure { display: inline-block; margin: 0 1em 1em 0; } figure img { max-width: 560px; }
"""

_SORT = """
document.querySelectorAll("table.board th").forEach((th, col) =>
 th.addEventListener("click", () => {
  const body = th.closest("table").tBodies[0], rows = Array.from(body.rows);
  const asc = th.dataset.asc !== "true"; th.dataset.asc = asc;
  const key = r => {
    const t = r.cells[col].innerText, n = parseFloat(t); return isNaN(n) ? t : n;
  };
  rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (asc ? 1 : -1));
  rows.forEach(r => body.appendChild(r));
}));
"""


OPTIONAL = {c.name for c in PUBLISHED}


def _columns(board: pd.DataFrame, name: str) -> list[str]:
    """The board schema's `shown` columns (all columns stay in the CSV); unknown boards: all.
    A board under another file name (robustbench-linf.csv) is known by its columns."""
    schema = SCHEMAS.get(name) or schema_for(Path(f"{name}.csv"), board)
    shown = schema.shown if schema is not None else ()
    columns = [c for c in shown if c in board.columns] if shown else list(board.columns)
    # published numbers exist only for zoo models: no column of dashes for robench's runs
    return [c for c in columns if c not in OPTIONAL or board[c].notna().any()]


def _cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


FLAG_MARK = "\u26a0"  # a warning sign before the name of a flagged row


def _flagged(row: pd.Series) -> bool:
    """A row whose sanity checks or masking cross-check found something (its number is
    doubtful: see its flags)."""
    value = row.get("flags")
    return isinstance(value, str) and bool(value)


def _flag_note(board: pd.DataFrame) -> str:
    count = sum(_flagged(row) for _, row in board.iterrows())
    if not count:
        return ""
    return (
        f"{FLAG_MARK} {count} flagged row(s): their numbers are doubtful, see the flags column "
        "(gradient_masking_suspected: a gradient-free attack fooled what PGD could not)"
    )


def _row_cell(row: pd.Series, column: str) -> str:
    """A cell; a percentage with its interval (`32.5 ± 2.9`) where the row has one."""
    if f"{column}_lo" in row.index and f"{column}_hi" in row.index:
        return row_estimate(row, column)
    return _cell(row[column])


def _name_cell(row: pd.Series, column: str, text: str) -> str:
    return f"{FLAG_MARK} {text}" if column == "run" and _flagged(row) else text


def board_markdown(board: pd.DataFrame, name: str) -> str:
    columns = _columns(board, name)
    lines = [
        "| " + " | ".join(columns) + " |",
        "|"
        + "".join("---:|" if pd.api.types.is_numeric_dtype(board[c]) else "---|" for c in columns),
    ]
    for _, row in board.iterrows():
        cells = (
            html.escape(_name_cell(row, c, _row_cell(row, c)), quote=False).replace("|", "\\|")
            for c in columns
        )
        lines.append("| " + " | ".join(cells) + " |")
    note = _flag_note(board)
    return "\n".join(lines) + "\n" + (f"\n**{note}**\n" if note else "")


def board_html(board: pd.DataFrame, name: str) -> str:
    columns = _columns(board, name)
    numeric = {c for c in columns if pd.api.types.is_numeric_dtype(board[c])}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        ('<tr class="flagged">' if _flagged(row) else "<tr>")
        + "".join(
            f'<td class="num">{html.escape(_row_cell(row, c))}</td>'
            if c in numeric
            else f"<td>{html.escape(_name_cell(row, c, _row_cell(row, c)))}</td>"
            for c in columns
        )
        + "</tr>\n"
        for _, row in board.iterrows()
    )
    note = _flag_note(board)  # above the table, where a reader starts
    warning = f'<p class="flag-note">{html.escape(note)}</p>' if note else ""
    return (
        f'{warning}<div class="scroll"><table class="board"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}</tbody></table></div>"
    )


def _provenance(board: pd.DataFrame) -> str:
    fields = ("dataset", "device", "robench_version", "git_revision", "train_suite")
    parts = []
    for field in fields:
        if field in board.columns and len(board):
            values = sorted({_cell(v) for v in board[field]})
            parts.append(f"{field}: {', '.join(values)}")
    return html.escape("; ".join(parts))


def report_html(title: str, boards: dict[str, pd.DataFrame], figures: list[Path]) -> str:
    sections = []
    for name, board in boards.items():
        sections.append(
            f"<h2>{html.escape(name)}</h2>\n{board_html(board, name)}\n"
            f'<p class="caption">{_provenance(board)}</p>'
        )
    if figures:
        images = "".join(
            f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
            f'{base64.b64encode(p.read_bytes()).decode()}"><figcaption class="caption">'
            f"{html.escape(p.stem)}</figcaption></figure>"
            for p in figures
        )
        sections.append(f"<h2>figures</h2>\n{images}")
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f'<h1>{html.escape(title)}</h1>\n<p class="meta">robench {robench.__version__}, '
        f"written {now_iso()}. Click a column header to sort.</p>\n"
        + "\n".join(sections)
        + f"\n<script>{_SORT}</script>\n</body></html>\n"
    )
