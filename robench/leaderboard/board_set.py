"""The boards one session writes: stored as rows arrive, and kept in memory for later stages.

Each `store` upserts rows into `<folder>/<board>.csv` under the board's lock (so a finished
target's rows are on disk before the next starts) and keeps the merged board; `ours` is that
board restricted to the rows this session stored (by their keys: those runs, those models,
those protocols), which is what the paper tables, figures and report are made of, without
reading the CSV back. The same run's rows of another protocol already in the file (an eps
sweep, another n, another precision) stay in the file and out of the tables.
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
        self._keys: dict[str, set[tuple[str, ...]]] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.csv"

    def store(self, schema: BoardSchema, rows: list[dict[str, Any]]) -> None:
        board = upsert_rows(self.path(schema.name), rows, schema, self.warn)
        self._boards[schema.name] = board
        self._schemas[schema.name] = schema
        # the stored rows' keys as the merged board spells them (typed, then as text)
        stored = board.tail(len(rows))
        self._keys.setdefault(schema.name, set()).update(_keys(stored, schema.key))

    def names(self) -> list[str]:
        return list(self._boards)

    def schema(self, name: str) -> BoardSchema:
        return self._schemas[name]

    def ours(self, name: str, runs: set[str] | None = None) -> pd.DataFrame:
        """The board's rows stored this session (of `runs` only, if given): not another
        model's row of the same name, nor the run's rows of another protocol."""
        board = self._boards[name]
        mine = pd.Series(_keys(board, self._schemas[name].key), index=board.index).isin(
            self._keys[name]
        )
        if runs is not None:
            mine &= board["run"].isin(runs)
        return board[mine]

    def __contains__(self, name: object) -> bool:
        return name in self._boards


def _keys(board: pd.DataFrame, key: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [tuple(values) for values in board[list(key)].astype(str).to_numpy()]
