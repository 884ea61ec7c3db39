"""Leaderboard CSVs: one schema, keyed upserts, rich rendering."""

from robench.leaderboard.render import board_table
from robench.leaderboard.schema import COLUMNS, KEY_COLUMNS
from robench.leaderboard.store import read_board, upsert_rows

__all__ = ["COLUMNS", "KEY_COLUMNS", "board_table", "read_board", "upsert_rows"]
