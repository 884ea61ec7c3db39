"""Leaderboard CSVs: one schema module, keyed upserts, validation, diffs, rich rendering."""

from robench.leaderboard.render import board_table
from robench.leaderboard.schema import PGD20, SCHEMAS, TABLE3, BoardSchema, schema_for
from robench.leaderboard.store import (
    LeaderboardError,
    read_board,
    upsert_rows,
    validate_board,
    write_board,
)

__all__ = [
    "PGD20",
    "SCHEMAS",
    "TABLE3",
    "BoardSchema",
    "LeaderboardError",
    "board_table",
    "read_board",
    "schema_for",
    "upsert_rows",
    "validate_board",
    "write_board",
]
