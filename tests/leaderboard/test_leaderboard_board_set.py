"""A session's boards: `ours` is the rows this session stored, by their keys; the same run's
rows of another protocol already in the file (an eps sweep, another n) stay out of the
tables, and another model of the same name too."""

from __future__ import annotations

from helpers import leaderboard_row

from robench.leaderboard import PGD20, upsert_rows
from robench.leaderboard.board_set import BoardSet


def test_ours_is_the_rows_this_session_stored(tmp_path):
    swept = {**leaderboard_row("a", ra=70.0), "eps": "2/255", "eps_value": 2 / 255}
    other_n = leaderboard_row("a", ra=10.0, n=20)
    namesake = {**leaderboard_row("a", ra=5.0), "model_id": "test:another"}
    upsert_rows(tmp_path / "pgd20.csv", [swept, other_n, namesake], PGD20)
    boards = BoardSet(tmp_path)
    boards.store(PGD20, [leaderboard_row("a", ra=40.0), leaderboard_row("b", ra=30.0)])
    assert (
        len(boards.ours("pgd20")) == 2 and len(boards.path("pgd20").read_text().splitlines()) == 6
    )
    assert list(boards.ours("pgd20", {"a"})["ra"]) == [40.0]
    boards.store(PGD20, [leaderboard_row("a", ra=41.0)])  # the same row again: replaced
    assert sorted(boards.ours("pgd20")["ra"]) == [30.0, 41.0]
