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


def test_a_bf16_evaluation_is_a_row_beside_the_fp32_one(tmp_path):
    path = tmp_path / "pgd20.csv"
    upsert_rows(path, [{**leaderboard_row("a", ra=40.0), "precision": "fp32"}])
    board = upsert_rows(path, [{**leaderboard_row("a", ra=38.0), "precision": "bf16"}])
    assert sorted(zip(board["precision"], board["ra"], strict=True)) == [
        ("bf16", 38.0), ("fp32", 40.0)
    ]  # fmt: skip
    board = upsert_rows(path, [{**leaderboard_row("a", ra=41.0), "precision": "fp32"}])
    assert sorted(board["ra"]) == [38.0, 41.0]  # the fp32 row replaced, the bf16 one kept


def test_a_row_from_before_precision_was_keyed_is_replaced(tmp_path):
    import pandas as pd

    path = tmp_path / "pgd20.csv"
    upsert_rows(path, [{**leaderboard_row("a", ra=40.0), "precision": "fp32"}])
    old = pd.read_csv(path).drop(columns=["precision"])  # a version-1 board: no precision
    old.to_csv(path, index=False)
    assert read_board(path)["precision"].isna().all()  # it still reads
    heard = []
    board = upsert_rows(path, [{**leaderboard_row("a", ra=42.0), "precision": "fp32"}],
                        warn=heard.append)  # fmt: skip
    assert list(board["ra"]) == [42.0] and "before rows carried" in heard[0]
