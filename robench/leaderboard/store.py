"""Leaderboard CSVs: read, and upsert rows by key under a file lock with an atomic rewrite.

Two evaluations writing the same board at once must not lose each other's rows, and a crash
mid-write must leave the previous board intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from robench.atomic import atomic_write
from robench.errors import RobenchError
from robench.leaderboard.schema import COLUMNS, KEY_COLUMNS, check_row


def read_board(path: Path) -> pd.DataFrame:
    """A leaderboard as a typed DataFrame; a one-line error if it is not one."""
    if not path.is_file():
        raise RobenchError(f"leaderboard {path} does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise RobenchError(f"{path} is not a leaderboard CSV ({exc})") from None
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise RobenchError(f"{path} is not a robench leaderboard: missing columns {missing}")
    return _typed(frame)


def upsert_rows(path: Path, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Insert `rows`, replacing any existing row with the same key; returns the new board."""
    for row in rows:
        check_row(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=600):
        board = read_board(path) if path.is_file() else _typed(pd.DataFrame(columns=list(COLUMNS)))
        new = _typed(pd.DataFrame(rows, columns=list(COLUMNS)))
        keys = list(KEY_COLUMNS)
        new_keys = set(map(tuple, new[keys].astype(str).to_numpy()))
        keep = ~board[keys].astype(str).apply(tuple, axis=1).isin(new_keys) if len(board) else []
        merged = pd.concat([board[keep] if len(board) else board, new], ignore_index=True)
        merged = _typed(merged)
        atomic_write(path, lambda tmp: merged.to_csv(tmp, index=False))
    return merged


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for column, dtype in COLUMNS.items():
        if column not in frame.columns:
            frame[column] = pd.NA
        values = (
            frame[column].replace("", pd.NA) if frame[column].dtype == object else frame[column]
        )
        if dtype == "boolean":
            values = values.map(
                lambda v: v if v is pd.NA or isinstance(v, bool) else str(v).lower() == "true"
            )
        elif dtype in ("float64", "Int64"):
            values = pd.to_numeric(values, errors="coerce")
        frame[column] = values.astype(dtype)
    extra = [c for c in frame.columns if c not in COLUMNS]
    return frame[list(COLUMNS) + extra]
