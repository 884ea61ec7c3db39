import threading

import pytest
from helpers import leaderboard_row

from robench.errors import RobenchError
from robench.leaderboard import read_board, upsert_rows


def test_upsert_replaces_same_key_and_keeps_others(tmp_path):
    path = tmp_path / "pgd20.csv"
    upsert_rows(path, [leaderboard_row("a", 40.0), leaderboard_row("b", 30.0)])
    upsert_rows(path, [leaderboard_row("a", 42.0)])
    upsert_rows(path, [leaderboard_row("a", 41.0, n=50)])  # another protocol: a new row
    board = read_board(path)
    assert len(board) == 3
    assert board.loc[(board.run == "a") & (board.n_eval == 100), "ra"].item() == 42.0
    assert board["ra"].dtype == "float64"
    assert bool(board["is_jpeg_copy"].iloc[0])


def test_numbers_are_stored_as_numbers(tmp_path):
    path = tmp_path / "b.csv"
    upsert_rows(path, [leaderboard_row()])
    text = path.read_text()
    assert ",40.0," in text and "8/255" in text
    board = read_board(path)
    assert board["steps"].iloc[0] == 20 and board["eps_value"].iloc[0] == pytest.approx(8 / 255)


def test_concurrent_upserts_lose_no_rows(tmp_path):
    path = tmp_path / "c.csv"
    threads = [
        threading.Thread(target=upsert_rows, args=(path, [leaderboard_row(f"r{i}")]))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(read_board(path).run) == sorted(f"r{i}" for i in range(8))


def test_a_file_that_is_not_a_leaderboard(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("hello,world\n1,2\n")
    with pytest.raises(RobenchError, match="not a robench leaderboard"):
        read_board(path)
