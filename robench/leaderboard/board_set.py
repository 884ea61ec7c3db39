"""The boards one session writes: stored as rows arrive, and kept in memory for later stages.

Each `store` upserts rows into `<folder>/<board>.csv` under the board's lock (so a finished
target's rows are on disk before the next starts) and keeps the merged board; `ours` is that
board restricted to the rows this session stored (those runs, those models), which is what
the paper tables, figures and report are made of, without reading the CSV back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from robench.columns import BoardSchema
from robench.leaderboard.store import Warn, upsert_rows


class BoardSet:
    def __init__(self, folder: Path, warn: Warn | None = None) -> None:
        self.folder = Path(folder)
        self.warn = warn
        self._boards: dict[str, pd.DataFrame] = {}
        self._schemas: dict[str, BoardSchema] = {}
        self._runs: dict[str, list[str]] = {}
        self._ids: dict[str, set[str]] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.csv"

    def store(self, schema: BoardSchema, rows: list[dict[str, Any]]) -> None:
        self._boards[schema.name] = upsert_rows(self.path(schema.name), rows, schema, self.warn)
        self._schemas[schema.name] = schema
        runs = self._runs.setdefault(schema.name, [])
        runs += [str(r["run"]) for r in rows if str(r["run"]) not in runs]
        self._ids.setdefault(schema.name, set()).update(str(r.get("model_id")) for r in rows)

    def names(self) -> list[str]:
        return list(self._boards)

    def schema(self, name: str) -> BoardSchema:
        return self._schemas[name]

    def ours(self, name: str, runs: set[str] | None = None) -> pd.DataFrame:
        """The board's rows of the runs stored this session (of `runs` only, if given)."""
        board = self._boards[name]
        keep = set(self._runs[name]) if runs is None else set(self._runs[name]) & runs
        mine = board["run"].isin(keep)
        if "model_id" in board:  # not another model's row of the same name
            mine &= board["model_id"].astype(str).isin(self._ids[name])
        return board[mine]

    def __contains__(self, name: object) -> bool:
        return name in self._boards
