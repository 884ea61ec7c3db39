"""The row that stands for a run: its evaluation under the paper's protocol.

A pgd20 board can hold several rows of one run: an eps sweep (`--eps-sweep`), another number
of images, a bf16 evaluation beside the fp32 one, a rerun with `--steps`. Whatever ranks runs,
judges the paper's claims or draws one marker per run must pick the same row, and pick it by
protocol, never by the order rows happen to sit in the file:

1. L-inf at eps 8/255 (the paper's budget), when the run has such a row;
2. then the suite's own protocol (no command-line overrides) over overridden ones;
3. then fp32 (published numbers are fp32) over bf16;
4. then the most images, then the latest.
"""

from __future__ import annotations

import pandas as pd

PAPER_EPS = 8 / 255


def _is_paper_eps(board: pd.DataFrame) -> pd.Series:
    if "eps_value" not in board:
        return pd.Series(True, index=board.index)
    eps = board["eps_value"].astype("Float64").round(9) == round(PAPER_EPS, 9)
    linf = board["norm"].astype(str) != "l2" if "norm" in board else True
    return (eps & linf).fillna(False).astype(bool)


def at_paper_eps(board: pd.DataFrame) -> pd.DataFrame:
    """The rows at L-inf 8/255; a board without any (an L2 or swept-only board): all rows."""
    rows = board[_is_paper_eps(board)]
    return rows if len(rows) else board


def preference(board: pd.DataFrame) -> pd.DataFrame:
    """Sort keys, ascending = least preferred first (steps 2-4 of the module's order)."""
    keys = pd.DataFrame(index=board.index)
    overrides = board["overrides"] if "overrides" in board else pd.Series("", index=board.index)
    keys["plain"] = overrides.isna() | (overrides.astype(str).isin(["", "<NA>"]))
    precision = board["precision"] if "precision" in board else pd.Series(index=board.index)
    keys["fp32"] = precision.isna() | (precision.astype(str) == "fp32")
    keys["n"] = board["n_eval"].astype("Float64").fillna(0) if "n_eval" in board else 0
    keys["date"] = board["date"].astype(str) if "date" in board else ""
    return keys


def one_row_per_run(board: pd.DataFrame) -> pd.DataFrame:
    """One row per run (and model): the preferred among its rows at the paper's eps (or all
    its rows, for a run never evaluated there), in the board's order of first appearance."""
    if board.empty:
        return board
    rows = pd.concat(
        [
            at_paper_eps(group)
            for _, group in board.groupby(_identity(board), dropna=False, sort=False)
        ]
    )
    keys = preference(rows)
    ordered = rows.loc[keys.sort_values(list(keys.columns), kind="stable").index]
    best = ordered.groupby(_identity(ordered), dropna=False, sort=False).tail(1)
    return best.loc[[i for i in board.index if i in best.index]].reset_index(drop=True)


def _identity(board: pd.DataFrame) -> list[str]:
    return [c for c in ("run", "model_id") if c in board]
